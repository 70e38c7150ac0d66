package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/transport"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

type sendCmd struct {
	targetFlags
	Messages []string `arg:"" optional:"" name:"message" help:"Messages to send, one per argument. Without any, each line of stdin is one message, sent as it is read."`
	trustFlags
	Receipts bool `help:"Ask the server to confirm each batch of messages, so that a failure names exactly the first message not delivered. Servers found on the LAN that support it are asked anyway; use this with --server for a lanmsg server."`
	clientFlags
}

func (c *sendCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	if err := c.loadTrust(dir, std.err); err != nil {
		return err
	}
	t, err := c.trustedTarget(ctx, &c.targetFlags, log, l, sendQuestion)
	if err != nil {
		return err
	}
	cfg := c.clientConfig()
	if t.extended || c.Receipts {
		cfg.Hello = &session.Hello{}
	}
	if c.Receipts && !t.extended {
		// Nothing says whether the server at --server has receipts until
		// it answers the hello, which a plain server prints instead.
		log.Warn().Str("server", t.name).Msg("--receipts: asking for receipts with a !HELLO handshake; a server without them (such as the tutorial's) prints it as a message, and send then stops without sending the messages")
	}
	cl, addr, err := c.ct.dial(ctx, t, cfg, log)
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
			_, _ = fmt.Fprintln(std.err, "lanmsg: type messages, one per line; Ctrl-D sends them and ends")
		}
		ls := newLineSource(ctx, std.in, int(c.MaxPayload))
		defer ls.stop()
		src = ls
	}
	return deliver(ctx, cl, src, addr, int(c.MaxPayload), log)
}

// deliver sends every message from src, then "!DISCONNECT", and waits for the
// server's confirmation. A message that cannot be sent (too long) stops the
// stream; the messages before it are still delivered and confirmed, and the
// error names the first one that was not sent. When ctx ends (Ctrl-C,
// SIGTERM), deliver aborts the connection and returns ctx's error.
func deliver(ctx context.Context, cl *session.Client, src messageSource, addr string, max int, log *zerolog.Logger) error {
	// A signal also ends a send blocked on a server that does not read, or
	// on its confirmation: cut the connection; the error that follows is
	// reported as the interruption.
	defer context.AfterFunc(ctx, cl.Interrupt)()
	var stopped error // why input stopped early
	for stopped == nil {
		msg, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && ctx.Err() != nil {
			_ = cl.Abort()
			return ctx.Err()
		}
		if err == nil {
			err = cl.Send(msg)
		}
		switch {
		case err == nil:
		case errors.Is(err, transport.ErrFrameTooLarge), errors.Is(err, errTooLong):
			stopped = tooLongError(src.name(), max)
		case errors.Is(err, session.ErrReservedMessage):
			stopped = &cliError{code: exitUsage,
				err:  fmt.Errorf("%s is exactly !DISCONNECT, which would end the session, so it and everything after it were not sent", src.name()),
				hint: "lanmsg servers that support receipts carry it as text: use --receipts with --server, or find the server on the LAN"}
		case errors.Is(err, session.ErrHelloMessage):
			stopped = &cliError{code: exitUsage,
				err:  fmt.Errorf("%s is a valid !HELLO, which a lanmsg server would take for the start of a two-way session and not print, so it and everything after it were not sent", src.name()),
				hint: "with --receipts (for a lanmsg server) it is carried as text"}
		case errors.Is(err, session.ErrNotConfirmed):
			_ = cl.Abort()
			return unconfirmed(addr, cl, src.nameOf, err)
		default:
			stopped = readError(src.name(), err)
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
	switch {
	case stopped == nil:
		log.Info().Str("server", addr).Int("messages", cl.Sent()).Msg("delivered, confirmed by the server")
	case cl.Sent() > 0: // the error that follows names what was not sent
		log.Info().Str("server", addr).Int("messages", cl.Sent()).Msg("the messages before the one that stopped the input were delivered, confirmed by the server")
	}
	return stopped
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
//
// A goroutine reads the stream into a few fixed chunk buffers, handed over
// through channels, so that next can stop waiting when ctx ends: a Read on
// stdin cannot be interrupted, and send must still answer SIGTERM while stdin
// stays open and silent. Lines are split from the current chunk without
// copying; only a line that spans chunks is copied, into line.
type lineSource struct {
	ctx  context.Context
	max  int
	full chan chunk    // chunks read, in order; the last one carries the error that ended the stream
	free chan []byte   // buffers for the reader goroutine to fill
	quit chan struct{} // closed by stop: the reader goroutine ends

	buf     []byte // the current chunk's buffer, owned by next until the next chunk
	cur     []byte // the unread part of buf
	err     error  // how the stream ended, once the last chunk is in
	line    []byte // a line that spans chunks
	skip    bool   // discard input up to the next newline: the rest of a line too long
	pend    chunk  // a chunk drained took from full, to be the next one
	pending bool
	n       int
	once    sync.Once
}

// chunk is what the reader goroutine read: data, or the error that ended the
// stream, or both.
type chunk struct {
	b   []byte
	err error
}

// Chunk buffers: enough to keep the reader a chunk or two ahead of the
// sender, each large enough that the per-chunk handover costs nothing next to
// its lines.
const (
	chunkSize  = 64 << 10
	chunkCount = 4
)

// newLineSource starts reading r. next returns ctx's error when ctx ends
// while it waits for input; stop ends the reader goroutine once its Read
// returns.
func newLineSource(ctx context.Context, r io.Reader, max int) *lineSource {
	l := &lineSource{ctx: ctx, max: max, full: make(chan chunk, chunkCount), free: make(chan []byte, chunkCount), quit: make(chan struct{})}
	for range chunkCount {
		l.free <- make([]byte, chunkSize)
	}
	go l.read(r)
	return l
}

// read fills free buffers from r and hands them to next, until r ends or
// stop is called.
func (l *lineSource) read(r io.Reader) {
	for {
		var b []byte
		select {
		case b = <-l.free:
		case <-l.quit:
			return
		}
		n, err := r.Read(b[:cap(b)])
		for n == 0 && err == nil { // allowed, if discouraged: read again
			n, err = r.Read(b[:cap(b)])
		}
		select {
		case l.full <- chunk{b[:n], err}:
		case <-l.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// stop lets the reader goroutine end. The source is not used after it.
func (l *lineSource) stop() { l.once.Do(func() { close(l.quit) }) }

// errTooLong: a line longer than the maximum payload.
var errTooLong = errors.New("line too long")

// next returns the next line, valid until the following call; io.EOF at the
// end of the input; errTooLong for a line over the maximum (the following
// call goes on after that line); ctx's error if ctx ends while it waits.
func (l *lineSource) next() ([]byte, error) {
	for l.skip {
		if i := bytes.IndexByte(l.cur, '\n'); i >= 0 {
			l.cur, l.skip = l.cur[i+1:], false
			break
		}
		l.cur = nil
		if l.err != nil {
			l.skip = false
			break
		}
		if err := l.fill(); err != nil {
			return nil, err
		}
	}
	l.n++
	l.line = l.line[:0]
	for {
		if i := bytes.IndexByte(l.cur, '\n'); i >= 0 {
			seg := l.cur[:i+1]
			l.cur = l.cur[i+1:]
			if len(l.line) == 0 { // the whole line is in the chunk: no copy
				if len(seg) > l.max+2 { // +2: the "\r\n" that is not sent
					return nil, errTooLong
				}
				return trimEOL(seg), nil
			}
			if len(l.line)+len(seg) > l.max+2 {
				return nil, errTooLong
			}
			l.line = append(l.line, seg...)
			return trimEOL(l.line), nil
		}
		if len(l.cur) > 0 { // the line goes on in the next chunk
			if len(l.line)+len(l.cur) > l.max+2 {
				l.cur, l.skip = nil, true
				return nil, errTooLong
			}
			l.line = append(l.line, l.cur...)
			l.cur = nil
		}
		if l.err != nil {
			switch {
			case !errors.Is(l.err, io.EOF):
				return nil, l.err
			case len(l.line) > 0: // the last line has no newline
				return trimEOL(l.line), nil
			default:
				return nil, io.EOF
			}
		}
		if err := l.fill(); err != nil {
			return nil, err
		}
	}
}

// fill makes the next chunk current, waiting for it if need be, and gives
// the current buffer back to the reader.
func (l *lineSource) fill() error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if l.buf != nil {
		l.free <- l.buf // never blocks: free has room for every buffer
		l.buf = nil
	}
	c := l.pend
	if l.pending {
		l.pend, l.pending = chunk{}, false
	} else {
		select {
		case c = <-l.full:
		case <-l.ctx.Done():
			return l.ctx.Err()
		}
	}
	l.buf, l.cur, l.err = c.b, c.b, c.err
	return nil
}

// drained reports whether no more input is ready without waiting: the
// current chunk is used up and no other one with data waits. (The end of the
// stream waiting does not count: what was read is flushed before send goes
// on to "!DISCONNECT", as it would be if the end had not come yet.)
func (l *lineSource) drained() bool {
	if len(l.cur) > 0 {
		return false
	}
	if !l.pending {
		select {
		case l.pend = <-l.full:
			l.pending = true
		default:
			return true
		}
	}
	return len(l.pend.b) == 0
}
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
