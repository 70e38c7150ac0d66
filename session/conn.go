package session

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lanmsg/lanmsg/transport"
)

// batchSize is how much formatted output a session gathers before writing
// it, even if more input is waiting.
const batchSize = 64 << 10

// batches recycles output buffers, so that an idle session holds none.
var batches = sync.Pool{New: func() any { b := make([]byte, 0, batchSize+4096); return &b }}

// Reasons a session ended, as logged.
const (
	reasonDisconnect = "disconnect"
	reasonEOF        = "closed without !DISCONNECT"
	reasonProtocol   = "protocol error"
	reasonIdle       = "idle timeout"
	reasonStalled    = "stalled inside a frame"
	reasonShutdown   = "server shutting down"
	reasonReadError  = "read error"
	reasonOutput     = "output failed"
	reasonSlowReader = "not reading what the server sends (send queue full)"
)

// conn is the server side of one session.
type conn struct {
	srv   *Server
	id    uint64
	nc    net.Conn
	peer  string
	start time.Time

	messages atomic.Int64
	bytes    atomic.Int64

	stopping atomic.Bool // set by interrupt
	dropped  atomic.Bool // set by dropSlow

	ext *extSession // nil in a plain session; set by the session goroutine before any other use

	// Used only by the session goroutine, through deadlineReader.
	fr          *transport.Reader
	lastRead    time.Time
	headerStart time.Time
	flushed     time.Time // when the last output write returned
}

func newConn(s *Server, id uint64, nc net.Conn) *conn {
	c := &conn{srv: s, id: id, nc: nc, peer: nc.RemoteAddr().String(), start: time.Now()}
	c.fr = transport.NewReader((*deadlineReader)(c), s.cfg.MaxPayload)
	return c
}

// interrupt makes the session's read fail at once; the session then writes
// what it has read and ends.
func (c *conn) interrupt() {
	c.stopping.Store(true)
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

// serve reads frames until the session ends.
func (c *conn) serve() {
	out := outBatch{c: c}
	// writeOut writes the batch out; when the output fails, it ends the
	// session and reports false.
	writeOut := func() bool {
		if err := out.flush(); err != nil {
			c.finish(reasonOutput, err, false)
			return false
		}
		return true
	}
	msg := Message{Session: c.id, Peer: c.peer}
	first := true
	for {
		// The input ran dry, whatever the last frame was: write out what
		// was read before waiting for more.
		if out.n > 0 && !c.fr.FrameBuffered() && !writeOut() {
			return
		}
		p, err := c.fr.ReadFrame()
		if err != nil {
			if !writeOut() {
				return
			}
			reason, graceful := c.classify(err)
			if graceful || reason == reasonShutdown {
				// The server interrupted the read itself: its "i/o
				// timeout" is not news.
				err = nil
			}
			c.finish(reason, err, graceful)
			return
		}
		if first {
			first = false
			if h, ok := parseHello(p); ok {
				c.startExt(h)
				msg.Name = c.ext.name
				continue
			}
		}
		if len(p) > 0 && p[0] == '!' {
			if string(p) == transport.Disconnect {
				if writeOut() {
					c.finish(reasonDisconnect, nil, true)
				}
				return
			}
			// In an extended session: a control frame, or a message escaped
			// with one more "!".
			if c.ext != nil {
				if p = c.control(p); p == nil {
					continue
				}
			}
		}
		msg.Time, msg.Text = c.lastRead, p
		out.add(&msg)
		if c.ext != nil && c.ext.hello.Chat {
			c.srv.room.broadcast(encodeEvent(Event{Type: EventMessage, Name: c.ext.name, Text: string(p), Time: msg.Time}), c.id)
		}
		if out.full() && !writeOut() {
			return
		}
	}
}

// outBatch gathers a session's formatted messages for one output write.
type outBatch struct {
	c     *conn
	bp    *[]byte
	batch []byte
	n     int64 // messages in batch
	size  int64 // payload bytes in batch
}

func (o *outBatch) add(m *Message) {
	if o.bp == nil {
		o.bp = batches.Get().(*[]byte)
		o.batch = *o.bp
	}
	o.batch = o.c.srv.format.Append(o.batch, m)
	o.n++
	o.size += int64(len(m.Text))
}

func (o *outBatch) full() bool { return len(o.batch) >= batchSize }

// flush writes the batch to the output, counts its messages and, in an
// extended session, sends the receipt for them.
func (o *outBatch) flush() error {
	if o.bp == nil {
		return nil
	}
	c := o.c
	err := c.srv.out.write(o.batch)
	c.flushed = time.Now()
	if err == nil {
		total := c.messages.Add(o.n)
		c.bytes.Add(o.size)
		if c.ext != nil {
			c.ext.ack(total)
		}
	}
	if cap(o.batch) <= 2*batchSize { // not one grown for a huge message
		*o.bp = o.batch[:0]
		batches.Put(o.bp)
	}
	o.bp, o.batch, o.n, o.size = nil, nil, 0, 0
	return err
}

// startExt turns the session into an extended one after a hello.
func (c *conn) startExt(h Hello) {
	c.ext = newExtSession(h, c.nc, c.srv.cfg.SendQueue, c.dropSlow)
	if h.Chat {
		want := truncateName(h.Name)
		if want == "" {
			want = c.peer
		}
		c.srv.room.join(c, want)
		c.srv.room.broadcast(encodeEvent(Event{Type: EventJoin, Name: c.ext.name, Time: time.Now()}), c.id)
	} else {
		c.ext.send(encodeEvent(Event{Type: EventWelcome}))
	}
	ev := c.srv.log.Info().Uint64(fieldSession, c.id).Str(fieldPeer, c.peer).Int("version", h.V)
	if h.Chat {
		ev.Str("name", c.ext.name).Msg("extended session: receipts and chat")
	} else {
		ev.Msg("extended session: receipts")
	}
}

// control handles a control frame of an extended session. It returns the
// message a "!!"-escaped frame carries, or nil when the frame was control.
func (c *conn) control(p []byte) []byte {
	switch {
	case len(p) > 1 && p[1] == '!':
		return p[1:]
	case string(p) == whoRequest:
		c.ext.send(encodeEvent(Event{Type: EventWho, Names: c.srv.room.names()}))
	default:
		c.ext.send(encodeEvent(Event{Type: EventError, Text: "unknown control frame " + truncate(string(p), 40) + "; to send text starting with !, add one more ! in front"}))
	}
	return nil
}

// maxNameLen bounds a chat name, which rides in every event about its owner.
const maxNameLen = 64

// truncateName cuts a name to maxNameLen bytes, on a rune boundary.
func truncateName(s string) string {
	if len(s) <= maxNameLen {
		return s
	}
	n := maxNameLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// dropSlow ends a session whose client does not read what the server sends
// it (its queue overflowed), so that it cannot slow anyone else down.
func (c *conn) dropSlow() {
	c.dropped.Store(true)
	c.interrupt()
}

// classify names why reading stopped, and whether the connection may close
// normally.
func (c *conn) classify(err error) (reason string, graceful bool) {
	var pe *transport.ProtocolError
	switch {
	case c.dropped.Load():
		return reasonSlowReader, false
	case errors.Is(err, io.EOF):
		return reasonEOF, true
	case c.stopping.Load():
		return reasonShutdown, false
	case errors.As(err, &pe):
		return reasonProtocol, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.fr.State() == transport.Idle {
			return reasonIdle, false
		}
		return reasonStalled, false
	}
	return reasonReadError, false
}

// finish unregisters the session and closes the connection, normally or with
// a reset.
func (c *conn) finish(reason string, err error, graceful bool) {
	// Free the session's slot before the close that confirms the session, so
	// that a client starting its next session at once is not refused.
	active := c.srv.unregister(c)
	if c.ext != nil {
		if c.ext.hello.Chat && c.srv.room.leave(c) {
			c.srv.room.broadcast(encodeEvent(Event{Type: EventLeave, Name: c.ext.name, Time: time.Now()}), c.id)
		}
		wait := drainTimeout
		if graceful {
			wait = leaveTimeout
		}
		c.ext.close(wait) // the last receipt goes out before the close
	}
	if graceful {
		// The one orderly close: the confirmation. Undo the reset-on-close
		// set at accept.
		if tc, ok := c.nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(-1)
		}
		_ = c.nc.Close()
	} else {
		reset(c.nc)
	}
	if c.ext != nil {
		<-c.ext.done // the writer fails at once on the closed connection
	}
	c.srv.end(c, active, reason, err)
}

// deadlineReader is the conn as the frame reader sees it: before each read
// from the socket it sets the deadline that fits where the reader is in the
// stream. Deadlines are set per read system call, not per frame, so a busy
// session pays for them once per batch of frames.
type deadlineReader conn

func (d *deadlineReader) Read(p []byte) (int, error) {
	c := (*conn)(d)
	cfg := &c.srv.cfg
	now := time.Now()
	var deadline time.Time
	switch c.fr.State() {
	case transport.Idle:
		c.headerStart = time.Time{}
		// A chat participant may listen for hours without a word: no idle
		// deadline. TCP keepalive (on by default for accepted connections)
		// and the send timeout still find peers that vanished.
		if c.ext == nil || !c.ext.hello.Chat {
			deadline = now.Add(cfg.IdleTimeout)
		}
	case transport.InHeader:
		if c.headerStart.IsZero() {
			// The header started with the last read, or, if the session
			// was writing output since, when it could read again: time
			// spent blocked on the output is not the client's.
			c.headerStart = c.lastRead
			if c.flushed.After(c.headerStart) {
				c.headerStart = c.flushed
			}
		}
		deadline = earliest(now.Add(cfg.ReadTimeout), c.headerStart.Add(cfg.HeaderTimeout))
	default:
		c.headerStart = time.Time{}
		deadline = now.Add(cfg.ReadTimeout)
	}
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	// Shutdown sets stopping before it moves the deadline into the past; a
	// deadline set above may have overwritten that, so look again.
	if c.stopping.Load() {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	n, err := c.nc.Read(p)
	c.lastRead = time.Now()
	return n, err
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
