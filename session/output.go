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
	// maxWrite is the most the writer gathers into one Write call.
	maxWrite = 1 << 20
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
		o.mu.Lock()
		round, o.queue = o.queue, round[:0]
		if len(round) == 0 {
			o.running = false
			o.mu.Unlock()
			return
		}
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
