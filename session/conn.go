package session

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	var (
		bp    *[]byte
		batch []byte
		n     int64 // messages in batch
		size  int64 // payload bytes in batch
	)
	// flush writes the batch to the output and counts its messages.
	flush := func() error {
		if bp == nil {
			return nil
		}
		err := c.srv.out.write(batch)
		c.flushed = time.Now()
		if err == nil {
			c.messages.Add(n)
			c.bytes.Add(size)
		}
		*bp = batch[:0]
		batches.Put(bp)
		bp, batch, n, size = nil, nil, 0, 0
		return err
	}

	msg := Message{Session: c.id, Peer: c.peer}
	for {
		p, err := c.fr.ReadFrame()
		if err != nil {
			if ferr := flush(); ferr != nil {
				c.finish(reasonOutput, ferr, false)
				return
			}
			reason, graceful := c.classify(err)
			if graceful {
				err = nil
			}
			c.finish(reason, err, graceful)
			return
		}
		if string(p) == transport.Disconnect {
			if err := flush(); err != nil {
				c.finish(reasonOutput, err, false)
				return
			}
			c.finish(reasonDisconnect, nil, true)
			return
		}
		if bp == nil {
			bp = batches.Get().(*[]byte)
			batch = *bp
		}
		msg.Time, msg.Text = c.lastRead, p
		batch = c.srv.format.Append(batch, &msg)
		n++
		size += int64(len(p))
		if len(batch) >= batchSize || !c.fr.FrameBuffered() {
			if err := flush(); err != nil {
				c.finish(reasonOutput, err, false)
				return
			}
		}
	}
}

// classify names why reading stopped, and whether the connection may close
// normally.
func (c *conn) classify(err error) (reason string, graceful bool) {
	var pe *transport.ProtocolError
	switch {
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
	if graceful {
		_ = c.nc.Close()
	} else {
		reset(c.nc)
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
		deadline = now.Add(cfg.IdleTimeout)
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
