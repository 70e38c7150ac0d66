package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/transport"
)

type sendCmd struct {
	targetFlags
	Messages []string `arg:"" optional:"" name:"message" help:"Messages to send, one per argument. Without any, each line of stdin is one message, sent as it is read."`
	Receipts bool     `help:"Ask the server to confirm each batch of messages, so that a failure names exactly the first message not delivered. Servers found on the LAN that support it are asked anyway; use this with --server for a lanmsg server."`
	clientFlags
}

func (c *sendCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	t, err := c.target(ctx, log, l)
	if err != nil {
		return err
	}
	cfg := c.clientConfig()
	if t.extended || c.Receipts {
		cfg.Hello = &session.Hello{}
	}
	cl, addr, err := dialFirst(ctx, t, cfg, log)
	if err != nil {
		return err
	}
	if t.name != addr {
		log.Info().Str("server", t.name).Str("addr", addr).Bool("receipts", cl.Extended()).Msg("sending")
	}

	var src messageSource
	if len(c.Messages) > 0 {
		src = &argSource{args: c.Messages}
	} else {
		if isTerminal(std.in) {
			fmt.Fprintln(std.err, "lanmsg: type messages, one per line; Ctrl-D sends them and ends")
		}
		src = newLineSource(std.in, int(c.MaxPayload))
	}
	return deliver(cl, src, addr, int(c.MaxPayload), log)
}

// deliver sends every message from src, then "!DISCONNECT", and waits for the
// server's confirmation. A message that cannot be sent (too long) stops the
// stream; the messages before it are still delivered and confirmed, and the
// error names the first one that was not sent.
func deliver(cl *session.Client, src messageSource, addr string, max int, log *zerolog.Logger) error {
	var stopped error // why input stopped early
	for stopped == nil {
		msg, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = cl.Send(msg)
		}
		switch {
		case err == nil:
		case errors.Is(err, transport.ErrFrameTooLarge), errors.Is(err, errTooLong):
			stopped = &cliError{code: exitUsage,
				err:  fmt.Errorf("%s is longer than the %s limit, so it and everything after it were not sent", src.name(), byteSize(max)),
				hint: "raise --max-payload (here and on the server), or split the message"}
		case errors.Is(err, session.ErrReservedMessage):
			stopped = &cliError{code: exitUsage,
				err:  fmt.Errorf("%s is exactly !DISCONNECT, which would end the session, so it and everything after it were not sent", src.name()),
				hint: "lanmsg servers that support receipts carry it as text: use --receipts with --server, or find the server on the LAN"}
		case errors.Is(err, session.ErrNotConfirmed):
			_ = cl.Abort()
			return unconfirmed(addr, cl, src.nameOf, err)
		default:
			stopped = &cliError{code: exitFailure, err: fmt.Errorf("reading %s: %w; it and everything after it were not sent", src.name(), err)}
		}
		if stopped == nil && src.drained() {
			if err := cl.Flush(); err != nil {
				_ = cl.Abort()
				return unconfirmed(addr, cl, src.nameOf, err)
			}
		}
	}
	if err := cl.Close(); err != nil {
		return unconfirmed(addr, cl, src.nameOf, err)
	}
	log.Info().Str("server", addr).Int("messages", cl.Sent()).Msg("delivered, confirmed by the server")
	return stopped
}

// unconfirmed reports a session that ended before the server confirmed it.
// With receipts it names exactly what was delivered.
func unconfirmed(addr string, cl *session.Client, nameOf func(int) string, err error) error {
	ce := &cliError{code: exitUnconfirmed,
		err:  fmt.Errorf("sending to %s: %w", addr, err),
		hint: "check the server's log; run the send again to retry (messages may then arrive twice)"}
	if cl.Extended() {
		acked, sent := int(cl.Acked()), cl.Sent()
		if acked < sent {
			ce.err = fmt.Errorf("%w; the server confirmed %d of the %d messages sent: %s and everything after it were not delivered", ce.err, acked, sent, nameOf(acked+1))
			ce.hint = fmt.Sprintf("resend from %s on: nothing before it will arrive twice", nameOf(acked+1))
		} else {
			ce.err = fmt.Errorf("%w; the server confirmed all %d messages sent", ce.err, sent)
			ce.hint = "nothing sent was lost; anything not yet read from the input was not sent"
		}
	}
	return ce
}

// serverAddr validates --server and adds the default port when it is left
// out.
func serverAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" {
			s = net.JoinHostPort(s, strconv.Itoa(defaultPort))
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
	ce := &cliError{code: exitUnreachable, err: fmt.Errorf("cannot connect to %s: %w", addr, unwrapOp(errors.Unwrap(err)))}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		ce.hint = "nothing listens there: is 'lanmsg serve' running on that machine, and is the port right?"
	case errors.As(err, &dnsErr):
		ce.hint = "check the host name, or use the server's IP address"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		ce.hint = "no answer: check the address, that both machines are on the same network, and that a firewall allows the port (or raise --connect-timeout)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		ce.hint = "that address cannot be reached from here: check the address and your network connection"
	}
	return ce
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// messageSource yields the messages to send.
type messageSource interface {
	// next returns the next message, valid until the following call, or
	// io.EOF.
	next() ([]byte, error)
	// drained reports whether no more input is ready without waiting: the
	// moment to flush what is queued.
	drained() bool
	// name names the last message for an error ("message 3", "line 7").
	name() string
	// nameOf names message i (from 1).
	nameOf(i int) string
}

type argSource struct {
	args []string
	i    int
}

func (a *argSource) next() ([]byte, error) {
	if a.i >= len(a.args) {
		return nil, io.EOF
	}
	a.i++
	return []byte(a.args[a.i-1]), nil
}

func (a *argSource) drained() bool       { return false } // Close flushes at the end
func (a *argSource) name() string        { return a.nameOf(a.i) }
func (a *argSource) nameOf(i int) string { return "message " + strconv.Itoa(i) }

// lineSource reads messages from lines of a stream as they arrive, without
// reading the stream whole. A trailing "\r" is dropped, so CRLF input works.
type lineSource struct {
	br   *bufio.Reader
	max  int
	line []byte
	n    int
}

func newLineSource(r io.Reader, max int) *lineSource {
	return &lineSource{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// errTooLong: a line longer than the maximum payload.
var errTooLong = errors.New("line too long")

func (l *lineSource) next() ([]byte, error) {
	l.n++
	l.line = l.line[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		if len(l.line) == 0 && err == nil {
			return trimEOL(chunk), nil // the whole line is in the buffer: no copy
		}
		if len(l.line)+len(chunk) > l.max+2 { // +2: the "\r\n" that is not sent
			return nil, errTooLong
		}
		l.line = append(l.line, chunk...)
		switch {
		case err == nil:
			return trimEOL(l.line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(l.line) == 0 {
				return nil, io.EOF
			}
			return trimEOL(l.line), nil
		default:
			return nil, err
		}
	}
}

func (l *lineSource) drained() bool       { return l.br.Buffered() == 0 }
func (l *lineSource) name() string        { return l.nameOf(l.n) }
func (l *lineSource) nameOf(i int) string { return "line " + strconv.Itoa(i) }

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
