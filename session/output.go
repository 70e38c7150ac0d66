package session

import (
	"errors"
	"io"
	"sync"
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
// they were handed over, from one goroutine that runs while there is
// something to write: while it writes, sessions go on reading and
// formatting, and it writes everything that gathered meanwhile in one call
// (group commit). So a busy server makes a few large writes, not one per
// input read. A write error is sticky: every later batch fails with it.
type output struct {
	w io.Writer

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

func newOutput(w io.Writer) *output { return &output{w: w} }

// submit queues b to be written; c.written reports when it was.
func (o *output) submit(b *batch) error {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	o.queue = append(o.queue, b)
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
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
		err := o.err
		o.mu.Unlock()

		taken = taken[:0]
		for _, b := range round {
			if b.c.acct.startWrite() {
				taken = append(taken, b)
			} else {
				b.c.written(b, errShed)
			}
		}
		if err == nil {
			err = o.write(taken)
			if err != nil {
				o.mu.Lock()
				o.err = err
				o.mu.Unlock()
			}
		}
		for _, b := range taken {
			b.c.acct.endWrite()
			b.c.written(b, err)
		}
		clear(round)
		clear(taken)
	}
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
