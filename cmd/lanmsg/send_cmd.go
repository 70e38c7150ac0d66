package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

type sendCmd struct {
	targetFlags
	Messages []string `arg:"" optional:"" name:"message" help:"Messages to send, one per argument. Without any, each line of stdin is one message, sent as it is read."`
	trustFlags
	Room     string `placeholder:"NAME" help:"Also post each message into this chat room, as --as, for everyone in it to see (e.g. tail -f app.log | lanmsg send --room alerts). Needs a lanmsg server with rooms."`
	As       string `placeholder:"NAME" help:"The name messages posted with --room carry. Default: user@host."`
	Receipts bool   `help:"Ask the server to confirm each batch of messages, so that a failure names exactly the first message not delivered. Servers found on the LAN that support it are asked anyway; use this with --server for a lanmsg server."`
	clientFlags
}

func (c *sendCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	var room string
	if c.Room != "" {
		var err error
		if room, err = roomFlag(c.Room); err != nil {
			return err
		}
	}
	if err := c.loadTrust(dir, std.err); err != nil {
		return err
	}
	t, err := c.trustedTarget(ctx, &c.targetFlags, log, l, sendQuestion)
	if err != nil {
		return err
	}
	cfg := c.clientConfig()
	if t.extended || c.Receipts || room != "" {
		cfg.Hello = &session.Hello{}
	}
	if room != "" {
		cfg.Hello.Room, cfg.Hello.Name = room, c.As
		if c.As == "" {
			cfg.Hello.Name = defaultChatName()
		}
	}
	if c.Receipts && !t.extended {
		// Nothing says whether the server at --server has receipts until
		// it answers the hello, which a plain server prints instead.
		log.Warn().Str(session.FieldServer, t.name).Msg("--receipts: asking for receipts with a !HELLO handshake; a server without them (such as the tutorial's) prints it as a message, and send then stops without sending the messages")
	}
	cl, addr, err := c.ct.dial(ctx, t, cfg, log)
	if err != nil {
		return err
	}
	if room != "" && cl.Welcome().Room != room {
		_ = cl.Abort()
		return &cliError{code: exitFailure, err: fmt.Errorf("the server at %s has no chat rooms (it did not take room %s); nothing was sent", addr, room),
			hint: "it is an older lanmsg; leave out --room to send to it"}
	}
	if t.name != addr {
		log.Info().Str(session.FieldServer, t.name).Str(session.FieldAddr, addr).Bool("receipts", cl.Extended()).Str("room", room).Msg("sending")
	}

	var src session.Source
	unit := "message" // names the messages in reports: "message 3", "line 7"
	if len(c.Messages) > 0 {
		src = session.Args(c.Messages)
	} else {
		if isTerminal(std.in) {
			_, _ = fmt.Fprintln(std.err, "lanmsg: type messages, one per line; Ctrl-D sends them and ends")
		}
		ls := session.NewLines(std.in, int(c.MaxPayload))
		defer ls.Stop()
		src, unit = ls, "line"
	}
	name := func(i int) string { return unit + " " + strconv.Itoa(i) }
	rep, err := cl.Deliver(ctx, src, session.DeliverOptions{})
	var ie *session.InputError
	switch {
	case err == nil:
		log.Info().Str(session.FieldServer, addr).Int(session.FieldMessages, rep.Sent).Msg("delivered, confirmed by the server")
		return nil
	case errors.As(err, &ie):
		if rep.Sent > 0 { // the error that follows names what was not sent
			log.Info().Str(session.FieldServer, addr).Int(session.FieldMessages, rep.Sent).Msg("the messages before the one that stopped the input were delivered, confirmed by the server")
		}
		return inputError(ie, name)
	case err == ctx.Err(): // Ctrl-C, SIGTERM
		return err
	default:
		return unconfirmed(addr, rep, name, err)
	}
}

// inputError reports the message that stopped the input: neither it nor
// anything after it was sent; everything before it was delivered and
// confirmed.
func inputError(ie *session.InputError, name func(int) string) error {
	switch {
	case errors.Is(ie.Err, session.ErrTooLong):
		return tooLongError(name(ie.N), ie.Max)
	case errors.Is(ie.Err, session.ErrReservedMessage):
		return &cliError{code: exitUsage,
			err:  fmt.Errorf("%s is exactly !DISCONNECT, which would end the session, so it and everything after it were not sent", name(ie.N)),
			hint: "lanmsg servers that support receipts carry it as text: use --receipts with --server, or find the server on the LAN"}
	case errors.Is(ie.Err, session.ErrHelloMessage):
		return &cliError{code: exitUsage,
			err:  fmt.Errorf("%s is a valid !HELLO, which a lanmsg server would take for the start of a two-way session and not print, so it and everything after it were not sent", name(ie.N)),
			hint: "with --receipts (for a lanmsg server) it is carried as text"}
	default:
		return readError(name(ie.N), ie.Err)
	}
}

// tooLongError reports the first message over the size limit, which stopped
// the input.
func tooLongError(name string, max int) error {
	return &cliError{code: exitUsage,
		err:  fmt.Errorf("%s is longer than the %s limit, so it and everything after it were not sent", name, byteSize(max)),
		hint: "raise --max-payload (here and on the server), or split the message"}
}

// readError reports an input that could not be read to its end.
func readError(name string, err error) error {
	return &cliError{code: exitFailure, err: fmt.Errorf("reading %s: %w; it and everything after it were not sent", name, err),
		hint: "everything before it was delivered and confirmed: resend from " + name + " on"}
}

// unconfirmed reports a session that ended before the server confirmed it.
// With receipts it names exactly what was delivered.
func unconfirmed(addr string, rep session.Report, nameOf func(int) string, err error) error {
	ce := &cliError{code: exitUnconfirmed,
		err:  fmt.Errorf("sending to %s: %w", addr, err),
		hint: "check the server's log; run the send again to retry (messages may then arrive twice)"}
	if rep.Extended {
		acked, sent := int(rep.Acked), rep.Sent
		if acked < sent {
			ce.err = fmt.Errorf("%w; the server confirmed %d of the %d messages sent: %s and everything after it were not delivered", ce.err, acked, sent, nameOf(acked+1))
			ce.hint = fmt.Sprintf("resend from %s on: nothing before it will arrive twice", nameOf(acked+1))
		} else {
			ce.err = fmt.Errorf("%w; the server confirmed all %d messages sent", ce.err, sent)
			ce.hint = "nothing sent was lost; anything not yet read from the input was not sent"
		}
	}
	if h := notAllowedHint(err); h != "" {
		ce.hint = h
	}
	return ce
}

// serverAddr validates --server and adds the default port when it is left
// out.
func serverAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err != nil {
		host := s
		if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1] // [fd00::11]
		}
		var ae *net.AddrError
		if _, ipErr := netip.ParseAddr(host); ipErr == nil || (errors.As(err, &ae) && ae.Err == "missing port in address") {
			// A host alone, or an IPv6 address alone (fd00::11, whose
			// colons SplitHostPort cannot tell from a port's).
			s = net.JoinHostPort(host, strconv.Itoa(defaultPort))
		}
	}
	if err := checkHostPort(s, "--server"); err != nil {
		return "", err
	}
	host, _, _ := net.SplitHostPort(s)
	if host == "" {
		return "", &cliError{code: exitUsage, err: fmt.Errorf("--server %q has no host", s), hint: "give the server's address, such as --server 192.168.1.20:5050"}
	}
	return s, nil
}

func dialError(addr string, err error) error {
	ce := &cliError{code: exitUnreachable, err: fmt.Errorf("cannot connect to %s: %w", addr, dialCause(err))}
	var dnsErr *net.DNSError
	switch {
	case notAllowedHint(err) != "":
		ce.hint = notAllowedHint(err)
	case neterr.Refused(err):
		ce.hint = "nothing listens there: is 'lanmsg serve' running on that machine, and is the port right?"
	case errors.As(err, &dnsErr):
		ce.hint = "check the host name, or use the server's IP address"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		ce.hint = "no answer: check the address, that both machines are on the same network, and that a firewall allows the port (or raise --connect-timeout)"
	case neterr.Unreachable(err):
		ce.hint = "that address cannot be reached from here: check the address and your network connection"
	}
	return ce
}

// dialCause is why session.Dial failed, without its "connect to ADDR" and
// the net package's wrapping.
func dialCause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return unwrapOp(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
