package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
)

// target is a server to send to: a name for the person and the addresses to
// try, in order.
type target struct {
	name      string
	endpoints []string
	extended  bool // it advertises the two-way extension (TXT hello=1)
}

func serviceTarget(s discovery.Service) target {
	return target{name: s.Instance, endpoints: s.Endpoints(), extended: s.TXT[helloTXT] == "1"}
}

// helloTXT is the TXT key with which a server advertises the two-way
// extension (receipts and chat).
const helloTXT = "hello"

// targetFlags choose the server, for send and chat.
type targetFlags struct {
	mdnsFlags
	Server        string        `xor:"target" placeholder:"HOST:PORT" help:"Use the server at this address (port 5050 if left out), without looking on the LAN."`
	To            string        `xor:"target" placeholder:"NAME" help:"Use the server advertising this name (see 'lanmsg browse'); HOST:PORT works too. Without --to or --server: the only server on the LAN, or a choice from a list."`
	BrowseTimeout time.Duration `default:"2s" placeholder:"DURATION" help:"How long to look for servers on the LAN. Default ${default}."`
}

// clientFlags are a client's limits, for send and chat.
type clientFlags struct {
	MaxPayload     byteSize      `default:"1MiB" placeholder:"SIZE" help:"Largest message to send; a longer one is refused before it is sent. Default ${default}."`
	ConnectTimeout time.Duration `default:"5s" placeholder:"DURATION" help:"Time allowed to connect. Default ${default}."`
	ConfirmTimeout time.Duration `default:"10s" placeholder:"DURATION" help:"Time the server has to take messages and confirm them. Default ${default}."`
}

// check validates the timeouts, and the browse timeout beside them.
func (f *clientFlags) check(browse time.Duration) error {
	return checkTimeouts(map[string]time.Duration{"--connect-timeout": f.ConnectTimeout,
		"--confirm-timeout": f.ConfirmTimeout, "--browse-timeout": browse})
}

func (f *clientFlags) clientConfig() session.ClientConfig {
	return session.ClientConfig{
		MaxPayload:     int(f.MaxPayload),
		DialTimeout:    f.ConnectTimeout,
		WriteTimeout:   f.ConfirmTimeout,
		ConfirmTimeout: f.ConfirmTimeout,
	}
}

// target works out which server to use: --server, --to, or the LAN.
func (f *targetFlags) target(ctx context.Context, log *zerolog.Logger, l lan) (target, error) {
	server := f.Server
	if server == "" && looksLikeHostPort(f.To) {
		server = f.To
	}
	if server != "" {
		addr, err := serverAddr(server)
		if err != nil {
			return target{}, err
		}
		return target{name: addr, endpoints: []string{addr}}, nil
	}
	ifi, err := f.iface()
	if err != nil {
		return target{}, err
	}
	cfg := browseConfig(log, ifi)
	if f.To != "" {
		return findByName(ctx, l, cfg, f.To, f.BrowseTimeout)
	}
	found, err := browseAll(ctx, l, cfg, f.BrowseTimeout)
	if err != nil {
		return target{}, err
	}
	return choose(found, openControllingTTY, f.BrowseTimeout)
}

// findByName browses until a server called name answers, and returns it at
// once. Names compare as DNS-SD compares them: without regard to case.
func findByName(ctx context.Context, l lan, cfg discovery.BrowseConfig, name string, timeout time.Duration) (target, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		match  *discovery.Service
		others []string
	)
	err := l.Browse(ctx, cfg, func(s discovery.Service) {
		if match != nil {
			return
		}
		if strings.EqualFold(s.Instance, name) {
			match = &s
			cancel()
			return
		}
		others = append(others, s.Instance)
	})
	if match != nil {
		return serviceTarget(*match), nil
	}
	if err != nil {
		return target{}, browseError(err)
	}
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return target{}, err
	}
	ce := &cliError{code: exitUnreachable, err: fmt.Errorf("no lanmsg server named %q answered within %v", name, timeout), hint: browseHint}
	if len(others) > 0 {
		ce.hint = "servers found: " + quoteList(others) + "; run 'lanmsg browse' to list them"
	}
	return target{}, ce
}

// browseAll collects the servers that answer within timeout.
func browseAll(ctx context.Context, l lan, cfg discovery.BrowseConfig, timeout time.Duration) ([]discovery.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var found []discovery.Service
	err := l.Browse(ctx, cfg, func(s discovery.Service) { found = append(found, s) })
	if err != nil {
		return nil, browseError(err)
	}
	return found, nil
}

// choose picks among discovered servers: the only one, or the person's
// choice on the terminal.
func choose(found []discovery.Service, openTTY func() (io.ReadWriteCloser, error), timeout time.Duration) (target, error) {
	switch len(found) {
	case 0:
		return target{}, &cliError{code: exitUnreachable, err: fmt.Errorf("no lanmsg server found on the LAN within %v", timeout), hint: browseHint}
	case 1:
		return serviceTarget(found[0]), nil
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.Instance
	}
	tty, err := openTTY()
	if err != nil {
		return target{}, &cliError{code: exitUsage,
			err:  fmt.Errorf("%d lanmsg servers found (%s) and no terminal to ask which", len(found), quoteList(names)),
			hint: fmt.Sprintf("pick one with --to, e.g. --to %q", found[0].Instance)}
	}
	defer func() { _ = tty.Close() }()
	s, err := pick(tty, found)
	if err != nil {
		return target{}, err
	}
	return serviceTarget(s), nil
}

// pick shows a numbered list on the terminal and reads the person's choice.
// The names come from the network: they are shown escaped.
func pick(tty io.ReadWriter, found []discovery.Service) (discovery.Service, error) {
	_, _ = fmt.Fprintf(tty, "%d lanmsg servers found:\n", len(found))
	for i, s := range found {
		addrs := make([]string, len(s.Addrs))
		for j, a := range s.Addrs {
			addrs[j] = a.String()
		}
		_, _ = fmt.Fprintf(tty, "  %d) %s  (%s port %d)\n", i+1, esc(s.Instance), strings.Join(addrs, ", "), s.Port)
	}
	in := bufio.NewReader(tty)
	for {
		_, _ = fmt.Fprintf(tty, "Send to which server? [1-%d, or q to cancel]: ", len(found))
		line, err := in.ReadString('\n')
		answer := strings.TrimSpace(line)
		if answer == "q" || (err != nil && answer == "") {
			_, _ = fmt.Fprintln(tty)
			return discovery.Service{}, &cliError{code: exitUsage, err: errors.New("no server picked; nothing was sent")}
		}
		if n, convErr := strconv.Atoi(answer); convErr == nil && n >= 1 && n <= len(found) {
			return found[n-1], nil
		}
		for _, s := range found {
			if strings.EqualFold(s.Instance, answer) {
				return s, nil
			}
		}
		_, _ = fmt.Fprintf(tty, "%q is not one of the choices.\n", answer)
		if err != nil {
			return discovery.Service{}, &cliError{code: exitUsage, err: errors.New("no server picked; nothing was sent")}
		}
	}
}

// dialFirst connects to the first of the target's addresses that answers.
// With several addresses, each gets a short timeout so that a dead one (a VPN
// or Docker address, say) does not hold up the rest.
func dialFirst(ctx context.Context, t target, cfg session.ClientConfig, log *zerolog.Logger) (*session.Client, string, error) {
	if len(t.endpoints) > 1 {
		cfg.DialTimeout = min(cfg.DialTimeout, perAddressTimeout)
	}
	var last error
	for _, ep := range t.endpoints {
		cl, err := session.Dial(ctx, ep, cfg)
		if err == nil {
			return cl, ep, nil
		}
		if errors.Is(err, session.ErrNoExtension) {
			// Connected, but the server speaks only the plain protocol:
			// its other addresses lead to the same server.
			return nil, "", &cliError{code: exitFailure, err: fmt.Errorf("%q at %s: %w", t.name, ep, err),
				hint: "it speaks only the tutorial's one-way protocol: chat and receipts need a lanmsg server; 'lanmsg send' without --receipts works with it"}
		}
		log.Debug().Err(err).Str("addr", ep).Msg("address did not answer; trying the next")
		last = err
	}
	if last == nil {
		return nil, "", &cliError{code: exitUnreachable, err: fmt.Errorf("server %q advertised no address", t.name), hint: browseHint}
	}
	if len(t.endpoints) == 1 {
		return nil, "", dialError(t.endpoints[0], last)
	}
	ce := dialError(strings.Join(t.endpoints, ", "), last).(*cliError)
	ce.err = fmt.Errorf("cannot connect to %q at any of its addresses (%s): %w", t.name, strings.Join(t.endpoints, ", "), dialCause(last))
	return nil, "", ce
}

// perAddressTimeout bounds each connection attempt when a server has several
// addresses.
const perAddressTimeout = 1500 * time.Millisecond

// looksLikeHostPort reports whether s is HOST:PORT with a numeric port
// rather than a server name.
func looksLikeHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
