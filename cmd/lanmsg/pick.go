package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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

	// Pinning (pin.go): found on the LAN, with these TXT keys (else
	// --server HOST:PORT); the name to pin its key under after the
	// handshake, if any.
	found  bool
	txt    map[string]string
	pinKey string
	alts   []target // other answers with the pinned key, tried if this one proves another key
	// again looks on the LAN once more, ignoring the answers at the
	// addresses in skip (those that proved a key they do not advertise).
	again func(skip map[string]bool) (target, error)
}

func serviceTarget(s discovery.Service) target {
	return target{name: s.Instance, endpoints: s.Endpoints(), extended: s.TXT[helloTXT] == "1", found: true, txt: s.TXT}
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

// The picker's questions.
const (
	sendQuestion = "Send to which server?"
	chatQuestion = "Chat on which server?"
)

// target works out which server to use: --server, --to, or the LAN, where
// the picker asks question when several servers answer.
func (f *targetFlags) target(ctx context.Context, log *zerolog.Logger, l lan, question string) (target, error) {
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
	log.Debug().Dur("timeout", f.BrowseTimeout).Msg("looking for servers on the LAN")
	if f.To != "" {
		return findByName(ctx, l, cfg, f.To, f.BrowseTimeout)
	}
	return chooseOnLAN(ctx, l, cfg, f.BrowseTimeout, picker{question: question, openTTY: openControllingTTY})
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

// chooseOnLAN collects the servers that answer within timeout and picks
// one: the only one, or the person's choice. While the list is shown, it
// keeps looking, and servers that answer late are added to it.
func chooseOnLAN(ctx context.Context, l lan, cfg discovery.BrowseConfig, timeout time.Duration, p picker) (target, error) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrivals := make(chan discovery.Service)
	browsed := make(chan error, 1)
	go func() {
		browsed <- l.Browse(bctx, cfg, func(s discovery.Service) {
			select {
			case arrivals <- s:
			case <-bctx.Done():
			}
		})
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var found []discovery.Service
	seen := map[string]bool{}
collect:
	for {
		select {
		case s := <-arrivals:
			if !seen[s.Instance] {
				seen[s.Instance] = true
				found = append(found, s)
			}
		case err := <-browsed:
			if err != nil {
				return target{}, browseError(err)
			}
			arrivals = nil // it stopped looking: nothing more comes
			break collect
		case <-timer.C:
			break collect
		case <-ctx.Done(): // Ctrl-C: no picker, no waiting
			return target{}, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return target{}, err
	}
	p.more = arrivals
	return p.choose(ctx, found, timeout)
}

// picker asks the person at the terminal which server to use.
type picker struct {
	question string                             // such as "Send to which server?"
	openTTY  func() (io.ReadWriteCloser, error) // the terminal to ask on
	more     <-chan discovery.Service           // servers that answer while the list is shown; nil: none
	// mark, if not nil, notes each server shown, given the list so far
	// (pin.go: pinned, new, conflict).
	mark func(list []discovery.Service, s discovery.Service) string
}

// note is the mark of s among list, if the picker has marks.
func (p picker) note(list []discovery.Service, s discovery.Service) string {
	if p.mark == nil {
		return ""
	}
	return p.mark(list, s)
}

// choose picks among discovered servers: the only one, or the person's
// choice on the terminal. (It asks send's question, with nothing arriving
// later.) mark, if not nil, adds a note to each server in the list (pin.go:
// pinned, new, conflict).
func choose(found []discovery.Service, openTTY func() (io.ReadWriteCloser, error), timeout time.Duration, mark func([]discovery.Service, discovery.Service) string) (target, error) {
	return picker{question: sendQuestion, openTTY: openTTY, mark: mark}.choose(context.Background(), found, timeout)
}

// choose picks among found: the only one, or the person's choice, in the
// order of their names so that the numbers are the same from run to run.
func (p picker) choose(ctx context.Context, found []discovery.Service, timeout time.Duration) (target, error) {
	switch len(found) {
	case 0:
		return target{}, &cliError{code: exitUnreachable, err: fmt.Errorf("no lanmsg server found on the LAN within %v", timeout), hint: browseHint}
	case 1:
		return serviceTarget(found[0]), nil
	}
	found = slices.Clone(found)
	slices.SortStableFunc(found, func(a, b discovery.Service) int {
		if c := strings.Compare(strings.ToLower(a.Instance), strings.ToLower(b.Instance)); c != 0 {
			return c
		}
		return strings.Compare(a.Instance, b.Instance)
	})
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.Instance
	}
	tty, err := p.openTTY()
	if err != nil {
		return target{}, &cliError{code: exitUsage,
			err:  fmt.Errorf("%d lanmsg servers found (%s) and no terminal to ask which", len(found), quoteList(names)),
			hint: fmt.Sprintf("pick one with --to, e.g. --to %q", found[0].Instance)}
	}
	defer func() { _ = tty.Close() }()
	s, err := p.pick(ctx, tty, found)
	if err != nil {
		return target{}, err
	}
	return serviceTarget(s), nil
}

// pick shows a numbered list on the terminal and reads the person's choice.
// Servers that answer meanwhile (p.more) are added at the end of the list,
// so the numbers already shown stay. The names come from the network: they
// are shown escaped. When ctx ends (Ctrl-C), pick returns ctx's error at once.
func (p picker) pick(ctx context.Context, tty io.ReadWriter, found []discovery.Service) (discovery.Service, error) {
	shown := map[string]bool{}
	_, _ = fmt.Fprintf(tty, "%d lanmsg servers found:\n", len(found))
	for i, s := range found {
		shown[s.Instance] = true
		showChoice(tty, i+1, s, p.note(found, s))
	}
	type answer struct {
		line string
		err  error
	}
	answers := make(chan answer)
	quit := make(chan struct{})
	defer close(quit)
	go func() { // a read from the terminal cannot be interrupted: read it aside
		in := bufio.NewReader(tty)
		for {
			line, err := in.ReadString('\n')
			select {
			case answers <- answer{line, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	notPicked := &cliError{code: exitUsage, err: errors.New("no server picked; nothing was sent")}
	more := p.more
	for {
		_, _ = fmt.Fprintf(tty, "%s [1-%d, or q to cancel]: ", p.question, len(found))
		var a answer
	wait:
		for {
			select {
			case <-ctx.Done():
				_, _ = fmt.Fprintln(tty)
				return discovery.Service{}, ctx.Err()
			case s, ok := <-more:
				if !ok {
					more = nil
					continue
				}
				if shown[s.Instance] {
					continue
				}
				shown[s.Instance] = true
				found = append(found, s)
				_, _ = fmt.Fprintln(tty)
				showChoice(tty, len(found), s, p.note(found, s))
				_, _ = fmt.Fprintf(tty, "%s [1-%d, or q to cancel]: ", p.question, len(found))
			case a = <-answers:
				break wait
			}
		}
		answer := strings.TrimSpace(a.line)
		if answer == "q" || (a.err != nil && answer == "") {
			_, _ = fmt.Fprintln(tty)
			return discovery.Service{}, notPicked
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
		if a.err != nil {
			return discovery.Service{}, notPicked
		}
	}
}

// showChoice shows server s as choice n: "  2) beta  (198.18.0.12 port 5050)".
func showChoice(w io.Writer, n int, s discovery.Service, note string) {
	addrs := make([]string, len(s.Addrs))
	for j, a := range s.Addrs {
		addrs[j] = a.String()
	}
	if note != "" {
		note = "  " + note
	}
	_, _ = fmt.Fprintf(w, "  %d) %s  (%s port %d)%s\n", n, esc(s.Instance), strings.Join(addrs, ", "), s.Port, note)
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
			// It has the !HELLO, printed as a message by a plain server:
			// delivered, but not as asked.
			who := fmt.Sprintf("%q at %s", t.name, ep)
			if t.name == ep {
				who = "the server at " + ep
			}
			return nil, "", &cliError{code: exitUnconfirmed,
				err:  fmt.Errorf("%s does not support receipts or chat: it did not answer the !HELLO that asks for them within %v, so it speaks only the tutorial's one-way protocol, has printed the !HELLO as a message, and nothing else was sent", who, cfg.ConfirmTimeout),
				hint: "chat and receipts need a lanmsg server; 'lanmsg send' without --receipts works with this one"}
		}
		log.Debug().Err(err).Str(session.FieldAddr, ep).Msg("address did not answer; trying the next")
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
