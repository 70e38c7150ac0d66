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

	"github.com/lanmsg/lanmsg/session/rooms"
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
	reasonBudget     = "memory budget exhausted: this peer held the most"
	reasonTooSlow    = "sending too slowly (under --min-rate inside a frame)"
	reasonNoPong     = "no answer to the server's pings"
	reasonNoHello    = "chat page session without a chat hello"
)

// conn is the server side of one session.
type conn struct {
	srv   *Server
	id    uint64
	nc    net.Conn  // the TCP connection: deadlines, resets, socket options
	io    net.Conn  // what frames are read from and written to: nc, or TLS over it
	tls   *tlsState // nil in a plain session; set by the session goroutine before any other use
	peer  string
	start time.Time

	messages atomic.Int64
	bytes    atomic.Int64

	stopping atomic.Bool // set by interrupt
	dropped  atomic.Bool // set by dropSlow
	shed     atomic.Bool // set by shedBudget
	host     hostKey     // the peer's address, for the per-host limit
	web      bool        // a chat page's WebSocket (ServeWebSocket); set before the session starts
	http     atomic.Bool // the connection was handed to the WebServer

	acct   account       // what the session holds of the server's memory budget
	cancel chan struct{} // closed when the session is shed: stop waiting for the output

	// Output handed to the server's output and not yet written.
	outMu      sync.Mutex
	outPending int64         // bytes
	outErr     error         // why the output failed this session
	outWritten chan struct{} // one token: a batch of the session's was written

	tlsp atomic.Pointer[tlsState] // tls, for other goroutines (Sessions)

	ext  *extSession                // nil in a plain session; set by the session goroutine before any other use
	extp atomic.Pointer[extSession] // ext, for other goroutines (shedding)

	// Used only by the session goroutine, through deadlineReader.
	fr          *transport.Reader
	lastRead    time.Time
	headerStart time.Time
	flushed     time.Time // when the last output write returned
	rateStart   time.Time // the start of the current --min-rate window inside a frame
	rateBytes   int       // bytes received in that window
}

func newConn(s *Server, id uint64, nc net.Conn, host hostKey) *conn {
	c := &conn{srv: s, id: id, nc: nc, io: nc, peer: nc.RemoteAddr().String(), start: time.Now(), host: host,
		cancel: make(chan struct{}), outWritten: make(chan struct{}, 1)}
	c.acct = account{b: s.budget, onShed: c.shedBudget}
	c.fr = transport.NewReader((*deadlineReader)(c), s.cfg.MaxPayload)
	return c
}

// shedBudget ends the session because the server's memory budget ran out
// and this session held the most: its queued events are released and the
// connection reset at once, and a wait for the output is abandoned.
func (c *conn) shedBudget() {
	c.shed.Store(true)
	close(c.cancel)
	c.srv.log.Warn().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Int64(FieldHeldBytes, c.acct.held.Load()).
		Int64(FieldLimit, c.srv.budget.limit).Msg("memory budget exhausted: resetting the peer that holds the most (raise --memory-budget if this is legitimate load)")
	c.stopping.Store(true)
	if e := c.extSession(); e != nil {
		e.abandon()
	}
	c.srv.out.drop(c)
	reset(c.nc)
}

// giveUp ends a session that Shutdown waited for in vain (stuck on a
// blocked output): like shedding, its batches not yet being written are
// dropped and will never be written, since its client is told by the reset
// that they were not confirmed, and a wait for the output is abandoned.
func (c *conn) giveUp() {
	if c.acct.state.CompareAndSwap(acctIdle, acctShed) {
		c.shed.Store(true)
		close(c.cancel)
		c.srv.out.drop(c)
	}
	reset(c.nc)
}

// extSession returns c.ext once the session goroutine has set it.
func (c *conn) extSession() *extSession { return c.extp.Load() }

// interrupt makes the session's read fail at once; the session then writes
// what it has read and ends.
func (c *conn) interrupt() {
	c.stopping.Store(true)
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	if c.http.Load() {
		// net/http sets deadlines of its own: close the connection.
		_ = c.nc.Close()
	}
}

// serve reads frames until the session ends.
func (c *conn) serve() {
	out := outBatch{c: c}
	// writeOut writes the batch out; when the output fails, it ends the
	// session and reports false.
	writeOut := func() bool {
		if err := out.flush(); err != nil {
			c.finishOutput(err)
			return false
		}
		return true
	}
	// drainOut also waits until everything handed to the output is
	// written: before a close that confirms it, or that says it is not.
	drainOut := func() bool {
		err := out.flush()
		if err == nil {
			err = c.waitOutput(0)
			c.flushed = time.Now()
		}
		if err != nil {
			c.finishOutput(err)
			return false
		}
		return true
	}
	if !c.negotiate() {
		return
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
			if !drainOut() {
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
		// A frame is complete: the next header's clock starts with it,
		// even if its first bytes were read along with this frame's.
		c.headerStart = time.Time{}
		if first {
			first = false
			if h, ok := parseHello(p); ok && (h.Chat || !c.web) {
				c.startExt(h)
				msg.Name = c.ext.name
				if c.ext.room != nil {
					msg.Room = c.ext.room.name
				}
				continue
			}
			if c.web {
				// A chat page only ever chats.
				c.finish(reasonNoHello, nil, false)
				return
			}
		}
		if len(p) > 0 && p[0] == '!' {
			if string(p) == transport.Disconnect {
				if drainOut() {
					c.finish(reasonDisconnect, nil, true)
				}
				return
			}
			// In an extended session: a control frame, or a message escaped
			// with one more "!".
			if c.ext != nil {
				if p = c.control(p); p == nil {
					if c.ext.room != nil {
						msg.Name, msg.Room = c.ext.name, c.ext.room.name // after a !JOIN
					}
					continue
				}
			}
		}
		msg.Time, msg.Text = c.lastRead, p
		out.add(&msg)
		if c.ext != nil && c.ext.room != nil {
			c.post(p, msg.Time)
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
	o.c.acct.setBatch(cap(o.batch))
}

func (o *outBatch) full() bool { return len(o.batch) >= batchSize }

// flush hands the batch to the server's output, first waiting, if the
// session already has maxInflight bytes there, until enough is written.
// The output counts its messages and sends the receipt once it is written.
// It returns the output's error, if it failed before.
func (o *outBatch) flush() error {
	c := o.c
	if o.bp == nil {
		return c.outError()
	}
	b := &batch{c: c, bp: o.bp, buf: o.batch, n: o.n, size: o.size}
	o.bp, o.batch, o.n, o.size = nil, nil, 0, 0
	size := int64(cap(b.buf))
	// The batch's memory moves from the one being filled to the ones
	// handed over, still the session's.
	c.acct.setBatch(0)
	c.acct.charge(size)
	// (A batch larger than that, one huge message, waits for all before it.)
	// When the output as a whole is behind, a session waits for its own
	// output to be written before it hands over more.
	limit := max(0, maxInflight-size)
	if c.srv.out.busy() {
		limit = 0
	}
	if err := c.waitOutput(limit); err != nil {
		c.release(b) // never handed over: nothing pending to take back
		return err
	}
	c.outMu.Lock()
	c.outPending += size
	c.outMu.Unlock()
	err := c.srv.out.submit(b)
	if err != nil {
		c.outMu.Lock()
		c.outPending -= size
		c.outMu.Unlock()
		c.release(b)
	} else if c.shed.Load() {
		// Shed while the batch was being filled: shedBudget's drop may
		// have come before it was queued.
		c.srv.out.drop(c)
	}
	c.flushed = time.Now()
	return err
}

// finishOutput ends a session whose output could not be written: the
// output failed, or the session was shed meanwhile.
func (c *conn) finishOutput(err error) {
	if errors.Is(err, errShed) {
		c.finish(reasonBudget, nil, false)
		return
	}
	c.finish(reasonOutput, err, false)
}

// written is the output's report that b was written (err nil), or not.
// Batches of a session are reported in the order they were handed over.
func (c *conn) written(b *batch, err error) {
	// Count and acknowledge first: a session waiting for its output to
	// drain (before the close that confirms) must find the receipt queued
	// once it sees nothing pending.
	if b.n > 0 && err == nil {
		total := c.messages.Add(b.n)
		c.bytes.Add(b.size)
		if e := c.extSession(); e != nil {
			e.ack(total)
		}
	}
	if hook := testHookWritten.Load(); hook != nil {
		(*hook)()
	}
	size := int64(cap(b.buf))
	c.outMu.Lock()
	c.outPending -= size
	if err != nil && c.outErr == nil {
		c.outErr = err
	}
	c.outMu.Unlock()
	c.release(b)
	select {
	case c.outWritten <- struct{}{}:
	default:
	}
}

// testHookWritten, when set by a test, runs in written between the receipt
// and the session's count of what is pending.
var testHookWritten atomic.Pointer[func()]

// release gives back a batch's buffer and its share of the budget.
func (c *conn) release(b *batch) {
	size := int64(cap(b.buf))
	if cap(b.buf) <= 2*batchSize { // not one grown for a huge message
		*b.bp = b.buf[:0]
		batches.Put(b.bp)
	}
	c.acct.charge(-size)
}

// waitOutput waits until at most limit bytes of the session's output wait
// to be written, and returns the output's error if it failed.
func (c *conn) waitOutput(limit int64) error {
	for {
		c.outMu.Lock()
		pending, err := c.outPending, c.outErr
		c.outMu.Unlock()
		if err != nil {
			return err
		}
		if pending <= limit {
			return nil
		}
		select {
		case <-c.outWritten:
		case <-c.cancel:
			return errShed
		}
	}
}

// outError is the output's error for this session, if any.
func (c *conn) outError() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.outErr
}

// startExt turns the session into an extended one after a hello.
func (c *conn) startExt(h Hello) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		// The kernel's buffer for what the server sends: left to grow,
		// each participant that stops reading takes up to 4 MiB of kernel
		// memory, and a thousand of them push the whole machine's TCP
		// into memory pressure, where new connections stall for seconds.
		_ = tc.SetWriteBuffer(extSocketBuffer)
	}
	c.ext = newExtSession(h, c.io, c.srv.cfg.SendQueue, c.srv.cfg.SendTimeout, &c.acct, c.dropSlow)
	c.extp.Store(c.ext)
	if c.shed.Load() {
		c.ext.abandon() // shed before the session had its queue
	}
	roomName, err := roomFor(h)
	if err != nil {
		c.ext.sendOwn(c.srv.budget, Event{Type: EventError, Text: err.Error(), Time: time.Now()})
	}
	want := truncateName(h.Name)
	if want == "" {
		want = c.peer
	}
	c.ext.want = want
	switch {
	case h.Chat && roomName != "":
		c.joinRoom(roomName)
		if c.ext.room == nil && roomName != rooms.DefaultRoom {
			c.joinRoom(rooms.DefaultRoom) // refused (--max-rooms): the error said so
		}
		if c.ext.room == nil {
			c.ext.sendOwn(c.srv.budget, Event{Type: EventWelcome, Name: want, Max: c.srv.cfg.MaxPayload, Time: time.Now()})
		}
		c.goOnline()
	case roomName != "":
		// Posting into a room without joining it (send --room): under a
		// name the room could have given.
		r, err := c.srv.room(roomName)
		if err != nil {
			c.ext.sendOwn(c.srv.budget, Event{Type: EventError, Text: roomError(roomName, err), Time: time.Now()})
		} else {
			c.ext.name = c.chatName(want, nil)
			c.ext.room = r
		}
		c.ext.sendOwn(c.srv.budget, Event{Type: EventWelcome, Max: c.srv.cfg.MaxPayload, Room: roomName, Name: c.ext.name})
	default:
		c.ext.sendOwn(c.srv.budget, Event{Type: EventWelcome, Max: c.srv.cfg.MaxPayload})
	}
	ev := c.srv.log.Info().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Int(FieldVersion, h.V)
	if h.Chat {
		ev.Str(FieldName, c.ext.name).Msg("extended session: receipts and chat")
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
	case string(p) == pongFrame:
		// Liveness: reading it was the point.
	case string(p) == whoRequest:
		r := c.ext.room
		if r == nil {
			r, _ = c.srv.room(rooms.DefaultRoom)
		}
		names, more := listNames(r.names())
		c.ext.sendOwn(c.srv.budget, Event{Type: EventWho, Names: names, More: more, Time: time.Now(), Room: r.name})
	case c.ext.hello.V >= 3 && c.roomControl(p):
	default:
		c.ext.sendOwn(c.srv.budget, Event{Type: EventError, Text: "unknown control frame " + truncate(string(p), 40) + "; to send text starting with !, add one more ! in front", Time: time.Now()})
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
	case c.shed.Load():
		return reasonBudget, false
	case c.dropped.Load():
		return reasonSlowReader, false
	case errors.Is(err, errTooSlow):
		return reasonTooSlow, false
	case errors.Is(err, io.EOF):
		return reasonEOF, true
	case c.stopping.Load():
		return reasonShutdown, false
	case errors.As(err, &pe):
		return reasonProtocol, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.fr.State() == transport.Idle {
			if c.ext != nil && c.ext.hello.Chat {
				return reasonNoPong, false
			}
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
		if c.ext.hello.Chat {
			if c.ext.room != nil {
				c.ext.room.leave(c)
			}
			c.goOffline()
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
		c.closeGracefully()
	} else {
		reset(c.nc)
	}
	if c.ext != nil {
		<-c.ext.done // the writer fails at once on the closed connection
		c.ext.abandon()
	}
	c.acct.setReading(0)
	c.acct.setBatch(0)
	c.srv.budget.drain(&c.acct) // output or events of the session may still be on their way
	c.srv.end(c, active, reason, err)
}

// deadlineReader is the conn as the frame reader sees it: before each read
// from the socket it sets the deadline that fits where the reader is in the
// stream. Deadlines are set per read system call, not per frame, so a busy
// session pays for them once per batch of frames.
type deadlineReader conn

func (d *deadlineReader) Read(p []byte) (int, error) {
	c := (*conn)(d)
	// Whatever the reader has grown to holds memory on the peer's behalf,
	// and so does a message of a chat page's read ahead of it.
	held := c.fr.Held()
	if b, ok := c.io.(interface{ Buffered() int }); ok {
		held += b.Buffered()
	}
	c.acct.setReading(held)
	for {
		deadline, window := c.deadline(time.Now())
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		// Shutdown sets stopping before it moves the deadline into the
		// past; a deadline set above may have overwritten that, so look
		// again.
		if c.stopping.Load() {
			_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		}
		n, err := c.io.Read(p)
		c.lastRead = time.Now()
		if c.fr.State() != transport.Idle {
			c.rateBytes += n
		}
		if n == 0 && window && errors.Is(err, os.ErrDeadlineExceeded) && !c.stopping.Load() {
			// The --min-rate window ended, not the read timeout: check the
			// rate, and read on if the client kept up.
			if !c.rateOK(c.lastRead) {
				return 0, errTooSlow
			}
			continue
		}
		return n, err
	}
}

// errTooSlow ends a session that sends a frame more slowly than --min-rate.
var errTooSlow = errors.New("session: frame arriving under the minimum rate")

// deadline is the read deadline that fits where the reader is in the
// stream, and whether it is the end of a --min-rate window (rather than a
// timeout).
func (c *conn) deadline(now time.Time) (deadline time.Time, window bool) {
	cfg := &c.srv.cfg
	switch c.fr.State() {
	case transport.Idle:
		c.headerStart, c.rateStart = time.Time{}, time.Time{}
		if c.ext != nil && c.ext.hello.Chat {
			// A chat participant may listen for hours without a word, but
			// its client answers the server's pings: silence for two ping
			// intervals means it is gone, or not reading. Version 1
			// clients do not answer; TCP keepalive and the send timeout
			// find those that vanished.
			if c.ext.hello.V < 2 {
				return time.Time{}, false
			}
			return now.Add(2 * cfg.PingInterval), false
		}
		return now.Add(cfg.IdleTimeout), false
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
		deadline = now.Add(cfg.ReadTimeout)
	}
	if cfg.MinRate <= 0 {
		return deadline, false
	}
	// Inside a frame: at least MinRate bytes a second, measured over
	// windows of MinRateWindow, from the frame's first byte or from when
	// the session could read again after writing its output.
	if c.rateStart.IsZero() || c.flushed.After(c.rateStart) {
		c.rateStart, c.rateBytes = c.lastRead, 0
		if c.flushed.After(c.rateStart) {
			c.rateStart = c.flushed
		}
	}
	if end := c.rateStart.Add(cfg.MinRateWindow); end.Before(deadline) {
		return end, true
	}
	return deadline, false
}

// rateOK reports, at the end of a --min-rate window with the frame still
// incomplete, whether the client sent MinRate bytes for each second of it.
// It starts the next window.
func (c *conn) rateOK(now time.Time) bool {
	cfg := &c.srv.cfg
	need := int64(cfg.MinRate) * cfg.MinRateWindow.Milliseconds() / 1000
	ok := int64(c.rateBytes) >= need
	c.rateStart, c.rateBytes = now, 0
	return ok
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
