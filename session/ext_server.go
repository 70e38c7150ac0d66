package session

import (
	"net"
	"time"

	"sync"
)

// Limits of an extended session's outgoing side.
const (
	// DefaultSendQueue is how many bytes of frames may wait for a
	// participant, those being written included: enough for a burst from a
	// fast sender (a 64 KiB batch of short lines becomes some 70 KB of
	// events for each listener) many times over, so only a participant
	// that has stopped reading fills it. One that does is disconnected, so
	// that it never slows the others.
	DefaultSendQueue = 1 << 20
	// DefaultSendTimeout drops a participant whose socket takes no bytes
	// for this long.
	DefaultSendTimeout = 10 * time.Second
	// drainTimeout bounds the wait for the last frames (the final receipt)
	// when a session is cut short (an error, shutdown); leaveTimeout when it
	// ends normally with !DISCONNECT, where a slow reader should still get
	// everything.
	drainTimeout = 500 * time.Millisecond
	leaveTimeout = 5 * time.Second
	// writeChunk is the most bytes given to one write system call, so that
	// the send timeout measures progress, not the time to take a whole
	// large event.
	writeChunk = 256 << 10
	// extSocketBuffer is the socket send buffer of an extended session
	// (Linux doubles it): plenty for a LAN, and a bound on the kernel
	// memory a participant that does not read can hold.
	extSocketBuffer = 128 << 10
)

// extSession is the server side of an extended session: a queue of frames to
// the client, bounded in bytes, and the goroutine that writes them. Frames
// are shared: a chat event is encoded once and every member's queue holds
// the same bytes, written with vectored writes, never copied per member.
// Receipts are not queued: the writer sends the latest count, so a busy
// session costs one receipt per write, not one per output batch.
type extSession struct {
	hello Hello
	name  string // display name in the chat room, unique there
	want  string // the name asked for, tried again in each room joined
	// Used by the session goroutine, and by the room under its lock.
	room       *room  // the room joined (chat) or posted into; nil: none
	histBefore uint64 // the oldest message of room shown: !HISTORY pages back from it
	acct       *account
	timeout    time.Duration

	mu      sync.Mutex
	frames  []*sharedFrame
	pending int   // bytes queued or being written
	big     int   // of which in a frame larger than limit (one at most)
	limit   int   // most bytes pending before the client is dropped
	acked   int64 // the latest receipt to send
	ackSent int64
	closed  bool
	full    func() // called once when the queue overflows or a write fails

	wake chan struct{} // one token: there is something to write
	done chan struct{} // closed when the writer has stopped
}

func newExtSession(h Hello, nc net.Conn, limit int, timeout time.Duration, acct *account, full func()) *extSession {
	e := &extSession{hello: h, limit: limit, timeout: timeout, acct: acct, full: full,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.write(nc)
	return e
}

func (e *extSession) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// send queues a frame without blocking, taking a reference to it. When more
// than the limit would be waiting, the client is not reading: full is called
// (once) and nothing more is sent.
func (e *extSession) send(f *sharedFrame) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	// One frame larger than the whole queue may wait beside it, while
	// less than half the queue waits (a join or a receipt, say), and it
	// does not count against the small frames that follow: one big message
	// must not cost anybody their seat. A second one while the first waits
	// means the client is not keeping up.
	small := e.pending - e.big
	var fits bool
	if len(f.b) > e.limit {
		fits = e.big == 0 && small <= e.limit/2
	} else {
		fits = small == 0 || small+len(f.b) <= e.limit
	}
	if !fits {
		e.closed = true
		e.dropLocked()
		e.mu.Unlock()
		e.notify()
		go e.full()
		return
	}
	f.retain()
	e.frames = append(e.frames, f)
	e.pending += len(f.b)
	if len(f.b) > e.limit {
		e.big += len(f.b)
	}
	e.acct.hold(int64(len(f.b)))
	e.mu.Unlock()
	e.notify()
}

// sendOwn queues an event for this client alone.
func (e *extSession) sendOwn(b *budget, ev Event) {
	f := b.newFrame(encodeEvent(ev))
	e.send(f)
	f.release()
	b.enforce()
}

// dropLocked releases the queued frames.
func (e *extSession) dropLocked() {
	for i, f := range e.frames {
		e.acct.hold(-int64(len(f.b)))
		e.pending -= len(f.b)
		if len(f.b) > e.limit {
			e.big -= len(f.b)
		}
		f.release()
		e.frames[i] = nil
	}
	e.frames = e.frames[:0]
}

// ack records that n messages are written out; the writer sends the receipt.
func (e *extSession) ack(n int64) {
	e.mu.Lock()
	e.acked = n
	e.mu.Unlock()
	e.notify()
}

// close stops queueing; the writer sends what is queued and stops. It waits
// for that at most wait.
func (e *extSession) close(wait time.Duration) {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.notify()
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-e.done:
	case <-t.C:
	}
}

// abandon stops queueing and releases what is queued at once: the session
// is being shed.
func (e *extSession) abandon() {
	e.mu.Lock()
	e.closed = true
	e.dropLocked()
	e.mu.Unlock()
	e.notify()
}

// write sends what is queued, everything waiting at once in vectored writes,
// until the session closes. After a write error it stops; the session's end
// closes the connection.
func (e *extSession) write(nc net.Conn) {
	defer close(e.done)
	var frames []*sharedFrame
	var bufs net.Buffers
	for range e.wake {
		e.mu.Lock()
		frames, e.frames = e.frames, frames[:0]
		acked, closed := e.acked, e.closed
		sendAck := acked != e.ackSent
		e.ackSent = acked
		e.mu.Unlock()

		bufs = bufs[:0]
		size := 0
		for _, f := range frames {
			bufs = append(bufs, f.b)
			size += len(f.b)
		}
		if sendAck {
			bufs = append(bufs, encodeFrame(Event{Type: EventAck, N: acked}))
		}
		err := writeBuffers(nc, bufs, e.timeout)

		// The frames are written (or never will be): release them.
		e.mu.Lock()
		for i, f := range frames {
			if len(f.b) > e.limit {
				e.big -= len(f.b)
			}
			f.release()
			frames[i] = nil
		}
		e.pending -= size
		e.mu.Unlock()
		e.acct.hold(-int64(size))
		clear(bufs)

		if err != nil {
			// The client took no bytes for the send timeout, or the
			// connection is gone: end the session, do not just stop
			// talking to it.
			e.mu.Lock()
			first := !e.closed
			e.closed = true
			e.dropLocked()
			e.mu.Unlock()
			if first {
				go e.full()
			}
			return
		}
		if closed {
			return
		}
	}
}

// writeBuffers writes bufs to nc with vectored writes of at most writeChunk
// bytes, each with its own deadline.
func writeBuffers(nc net.Conn, bufs net.Buffers, timeout time.Duration) error {
	for len(bufs) > 0 {
		// Take a chunk of at most writeChunk bytes off the front.
		var chunk net.Buffers
		n := 0
		for len(bufs) > 0 && n < writeChunk {
			b := bufs[0]
			if take := writeChunk - n; len(b) > take {
				chunk = append(chunk, b[:take])
				bufs[0] = b[take:]
				n += take
				break
			}
			chunk = append(chunk, b)
			n += len(b)
			bufs = bufs[1:]
		}
		if err := nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := chunk.WriteTo(nc); err != nil {
			return err
		}
	}
	return nil
}
