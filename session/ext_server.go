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
	// DefaultSendQueue is how many frames may wait for a participant that
	// reads slowly; one that falls further behind is disconnected, so that
	// it never slows the others.
	DefaultSendQueue = 1024
	// sendTimeout drops a participant whose socket takes no bytes for this
	// long.
	sendTimeout = 10 * time.Second
	// drainTimeout bounds the wait for the last frames (the final receipt)
	// when a session ends.
	drainTimeout = 500 * time.Millisecond
)

// extSession is the server side of an extended session: a bounded queue of
// frames to the client and the goroutine that writes them.
type extSession struct {
	hello Hello
	name  string // display name in the chat room, unique there

	mu     sync.Mutex
	queue  chan []byte
	closed bool
	full   func() // called once when the queue overflows

	done chan struct{} // closed when the writer has stopped
}

func newExtSession(h Hello, nc net.Conn, queueLen int, full func()) *extSession {
	e := &extSession{hello: h, queue: make(chan []byte, queueLen), full: full, done: make(chan struct{})}
	go e.write(nc)
	return e
}

// send queues a frame without blocking. When the queue is full the client is
// not keeping up: full is called (once) and the frame is dropped.
func (e *extSession) send(frame []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	select {
	case e.queue <- frame:
	default:
		e.closed = true
		close(e.queue)
		go e.full()
	}
}

// close stops queueing; the writer sends what is queued and stops. It waits
// for that at most wait.
func (e *extSession) close(wait time.Duration) {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.queue)
	}
	e.mu.Unlock()
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

// write sends queued frames, batching those that wait together into one
// write. After a write error it discards the rest.
func (e *extSession) write(nc net.Conn) {
	defer close(e.done)
	// Every write gets its own deadline: Buffer writes too, when 64 KiB
	// have gathered (or a frame is that large), and a deadline set for an
	// earlier Flush may long have passed by then.
	w := transport.NewWriter(deadlineWriter{nc, sendTimeout}, transport.MaxPayloadLimit)
	failed := false
	for frame := range e.queue {
		if failed {
			continue
		}
		err := w.Buffer(frame)
		if err == nil && len(e.queue) == 0 {
			err = w.Flush()
		}
		failed = err != nil
	}
}

// room is the server's chat room: the extended sessions that joined it.
type room struct {
	mu      sync.RWMutex
	members map[uint64]*conn
}

// join adds c under a name unique in the room and returns that name and the
// names present, c's included.
func (r *room) join(c *conn, want string) (name string, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = make(map[uint64]*conn)
	}
	taken := make(map[string]bool, len(r.members))
	for _, m := range r.members {
		taken[strings.ToLower(m.ext.name)] = true
	}
	name = want
	for i := 2; taken[strings.ToLower(name)]; i++ {
		name = want + " (" + strconv.Itoa(i) + ")"
	}
	c.ext.name = name
	r.members[c.id] = c
	return name, r.namesLocked()
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
