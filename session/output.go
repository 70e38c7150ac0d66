package session

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

const (
	// maxInflight is how many bytes of formatted output one session may
	// have handed to the output and not yet seen written: enough that
	// reading and writing overlap and the writer gathers many batches into
	// each write; past it the session waits, so a slow output slows its
	// senders instead of growing memory.
	maxInflight = 1 << 20
	// maxWrite is the most the writer gathers into one Write call, and the
	// most it takes from the queue in one round. Larger writes cost more
	// per byte, not less: writing 1 GiB to a file here took 0.33 s of CPU
	// in 64 KiB writes and 1.8 s in 1 MiB writes (the source no longer
	// fits the CPU's caches).
	maxWrite = 64 << 10
)

// errShed: the session was shed before its output was written.
var errShed = errors.New("session: shed before its output was written")

// output writes the sessions' batches to the server's output, in the order
// they were handed over. A batch handed over while the output is idle is
// written at once by the session that hands it over, as a plain server
// would: one session alone never waits for another goroutine, and its
// bytes never cross to another core between formatting and writing. A batch
// handed over while a write is under way is queued, and one goroutine
// writes the queue until it is empty: while it writes, sessions go on
// reading and formatting, and it writes everything that gathered meanwhile
// in one call (group commit). So a busy server makes a few large writes,
// not one per input read. A write error is sticky: every later batch fails
// with it.
type output struct {
	w io.Writer

	// pending counts the bytes handed over and not yet written, across
	// sessions; past limit, a session with output of its own pending
	// waits before it hands over more, so that an output slower than its
	// senders slows them down instead of filling the memory budget.
	pending atomic.Int64
	limit   int64

	mu      sync.Mutex
	queue   []*batch
	running bool
	err     error

	scratch []byte // the writer's; gathers small batches into one write
}

// batch is formatted output of one session, with what it counts.
type batch struct {
	c    *conn
	bp   *[]byte // from batches; buf is *bp grown
	buf  []byte
	n    int64 // messages
	size int64 // their payload bytes
}

func newOutput(w io.Writer, limit int64) *output { return &output{w: w, limit: limit} }

// busy reports whether more output is pending than the output's limit.
func (o *output) busy() bool { return o.pending.Load() > o.limit }

// submit writes b, or queues it to be written when a write is under way;
// c.written reports when it was.
func (o *output) submit(b *batch) error {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	o.pending.Add(int64(len(b.buf)))
	if o.running {
		o.queue = append(o.queue, b)
		o.mu.Unlock()
		return nil
	}
	// Idle: write it here. Batches handed over meanwhile queue up behind
	// it, and a goroutine takes them over once it is written.
	o.running = true
	o.mu.Unlock()
	one, taken := [1]*batch{b}, [1]*batch{}
	o.writeRound(one[:], taken[:0])
	o.mu.Lock()
	more := len(o.queue) > 0
	o.running = more
	o.mu.Unlock()
	if more {
		go o.run()
	}
	return nil
}

// drop removes the queued batches of a shed session, so that their memory
// is released now rather than when a slow output reaches them.
func (o *output) drop(c *conn) {
	o.mu.Lock()
	var dropped []*batch
	kept := o.queue[:0]
	for _, b := range o.queue {
		if b.c == c {
			dropped = append(dropped, b)
		} else {
			kept = append(kept, b)
		}
	}
	clear(o.queue[len(kept):])
	o.queue = kept
	o.mu.Unlock()
	for _, b := range dropped {
		o.pending.Add(-int64(len(b.buf)))
		c.written(b, errShed)
	}
}

// run writes what is queued until nothing is.
func (o *output) run() {
	var round, taken []*batch
	for {
		// Take up to maxWrite bytes (at least one batch): what is taken
		// can no longer be shed, so a blocked output holds at most that.
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.running = false
			o.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(o.queue) && (n == 0 || size+len(o.queue[n].buf) <= maxWrite) {
			size += len(o.queue[n].buf)
			n++
		}
		round = append(round[:0], o.queue[:n]...)
		rest := copy(o.queue, o.queue[n:])
		clear(o.queue[rest:])
		o.queue = o.queue[:rest]
		o.mu.Unlock()

		taken = o.writeRound(round, taken[:0])
		clear(round)
		clear(taken)
	}
}

// writeRound writes the batches of one round, but for those of sessions shed
// meanwhile, and reports each to its session. It returns taken, the batches
// it wrote, appended to the slice given.
func (o *output) writeRound(round, taken []*batch) []*batch {
	for _, b := range round {
		if b.c.acct.startWrite() {
			taken = append(taken, b)
		} else {
			o.pending.Add(-int64(len(b.buf)))
			b.c.written(b, errShed)
		}
	}
	o.mu.Lock()
	err := o.err
	o.mu.Unlock()
	if err == nil {
		err = o.write(taken)
		if err != nil {
			o.mu.Lock()
			o.err = err
			o.mu.Unlock()
		}
	}
	for _, b := range taken {
		o.pending.Add(-int64(len(b.buf)))
		b.c.acct.endWrite()
		b.c.written(b, err)
	}
	return taken
}

// write writes the batches, gathering small ones into one call.
func (o *output) write(bs []*batch) error {
	if len(bs) == 1 {
		_, err := o.w.Write(bs[0].buf)
		return err
	}
	buf := o.scratch[:0]
	for _, b := range bs {
		if len(buf) > 0 && len(buf)+len(b.buf) > maxWrite {
			if _, err := o.w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(b.buf) >= maxWrite {
			if _, err := o.w.Write(b.buf); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, b.buf...)
	}
	if len(buf) > 0 {
		if _, err := o.w.Write(buf); err != nil {
			return err
		}
	}
	o.scratch = buf[:0]
	return nil
}
