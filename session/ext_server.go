package session

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// Limits of an extended session's outgoing side.
const (
	// DefaultSendQueue is how many bytes of frames may wait for a
	// participant: enough for a burst from a fast sender (a 64 KiB batch of
	// short lines becomes some 70 KB of events for each listener) many
	// times over, so only a participant that has stopped reading fills it.
	// One that does is disconnected, so that it never slows the others.
	DefaultSendQueue = 1 << 20
	// sendTimeout drops a participant whose socket takes no bytes for this
	// long.
	sendTimeout = 10 * time.Second
	// drainTimeout bounds the wait for the last frames (the final receipt)
	// when a session is cut short (an error, shutdown); leaveTimeout when it
	// ends normally with !DISCONNECT, where a slow reader should still get
	// everything.
	drainTimeout = 500 * time.Millisecond
	leaveTimeout = 5 * time.Second
)

// extSession is the server side of an extended session: a queue of frames to
// the client, bounded in bytes, and the goroutine that writes them.
// Receipts are not queued: the writer sends the latest count, so a busy
// session costs one receipt per write, not one per output batch.
type extSession struct {
	hello Hello
	name  string // display name in the chat room, unique there

	mu      sync.Mutex
	frames  [][]byte
	pending int   // bytes in frames
	limit   int   // most bytes pending before the client is dropped
	acked   int64 // the latest receipt to send
	ackSent int64
	closed  bool
	full    func() // called once when the queue overflows

	wake chan struct{} // one token: there is something to write
	done chan struct{} // closed when the writer has stopped
}

func newExtSession(h Hello, nc net.Conn, limit int, full func()) *extSession {
	e := &extSession{hello: h, limit: limit, full: full, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.write(nc)
	return e
}

func (e *extSession) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// send queues a frame without blocking. When more than the limit is waiting,
// the client is not reading: full is called (once) and nothing more is sent.
func (e *extSession) send(frame []byte) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	// A frame larger than the whole queue still goes into an empty one:
	// one big message must not cost anybody their seat.
	if e.pending > 0 && e.pending+len(frame) > e.limit {
		e.closed = true
		e.frames, e.pending = nil, 0
		e.mu.Unlock()
		e.notify()
		go e.full()
		return
	}
	e.frames = append(e.frames, frame)
	e.pending += len(frame)
	e.mu.Unlock()
	e.notify()
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

// write sends what is queued, everything waiting at once in one write, until
// the session closes. After a write error it stops; the session's end
// closes the connection.
func (e *extSession) write(nc net.Conn) {
	defer close(e.done)
	// Every write gets its own deadline: Buffer writes too, once 64 KiB
	// have gathered (or a frame is that large).
	w := transport.NewWriter(deadlineWriter{nc, sendTimeout}, transport.MaxPayloadLimit)
	var frames [][]byte
	for range e.wake {
		e.mu.Lock()
		frames, e.frames = e.frames, frames[:0]
		e.pending = 0
		acked, closed := e.acked, e.closed
		sendAck := acked != e.ackSent
		e.ackSent = acked
		e.mu.Unlock()

		var err error
		for i, f := range frames {
			if err == nil {
				err = w.Buffer(f)
			}
			frames[i] = nil
		}
		if sendAck && err == nil {
			err = w.Buffer(encodeEvent(Event{Type: EventAck, N: acked}))
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			// The client took no bytes for sendTimeout, or the connection
			// is gone: end the session, do not just stop talking to it.
			e.mu.Lock()
			first := !e.closed
			e.closed = true
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

// room is the server's chat room: the extended sessions that joined it.
type room struct {
	mu      sync.RWMutex
	members map[uint64]*conn
}

// join adds c under a name unique in the room, and queues c's welcome
// (that name, and the names present, c's included) before anyone else can
// send it anything.
func (r *room) join(c *conn, want string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = make(map[uint64]*conn)
	}
	taken := make(map[string]bool, len(r.members))
	for _, m := range r.members {
		taken[strings.ToLower(m.ext.name)] = true
	}
	name := want
	for i := 2; taken[strings.ToLower(name)]; i++ {
		name = want + " (" + strconv.Itoa(i) + ")"
	}
	c.ext.name = name
	r.members[c.id] = c
	c.ext.send(encodeEvent(Event{Type: EventWelcome, Name: name, Names: r.namesLocked()}))
}

// leave removes c; it reports whether c was a member.
func (r *room) leave(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[c.id]; !ok {
		return false
	}
	delete(r.members, c.id)
	return true
}

// broadcast queues frame to every member but except.
func (r *room) broadcast(frame []byte, except uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for id, m := range r.members {
		if id != except {
			m.ext.send(frame)
		}
	}
}

func (r *room) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *room) namesLocked() []string {
	names := make([]string, 0, len(r.members))
	for _, m := range r.members {
		names = append(names, m.ext.name)
	}
	sort.Strings(names)
	return names
}
