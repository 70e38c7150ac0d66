package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// Source yields the messages Deliver sends.
type Source interface {
	// Next returns the next message, valid until the following call;
	// io.EOF at the end; an error wrapping ErrTooLong for a message
	// over the limit (the following call goes on after it); ctx's error
	// when ctx ends while it waits.
	Next(ctx context.Context) ([]byte, error)
	// Drained reports whether no more input is ready without waiting: the
	// moment to flush what is queued.
	Drained() bool
}

// ErrTooLong: a message of the input (a line, for Lines) is longer than the
// maximum payload.
var ErrTooLong = errors.New("message too long")

// Args returns a Source of the given messages, in order. It is never
// drained: what it queues goes out with Close.
func Args(msgs []string) Source { return &argSource{args: msgs} }

type argSource struct {
	args []string
	i    int
}

func (a *argSource) Next(context.Context) ([]byte, error) {
	if a.i >= len(a.args) {
		return nil, io.EOF
	}
	a.i++
	return []byte(a.args[a.i-1]), nil
}

func (a *argSource) Drained() bool { return false }

// Lines is a Source of the lines of a stream, read as they arrive, without
// reading the stream whole. A trailing "\r" is dropped, so CRLF input works.
//
// A goroutine reads the stream into a few fixed chunk buffers, handed over
// through channels, so that Next can stop waiting when its context ends: a
// Read on stdin cannot be interrupted, and send must still answer SIGTERM
// while stdin stays open and silent. Lines are split from the current chunk
// without copying; only a line that spans chunks is copied, into line.
type Lines struct {
	max  int
	full chan chunk    // chunks read, in order; the last one carries the error that ended the stream
	free chan []byte   // buffers for the reader goroutine to fill
	quit chan struct{} // closed by Stop: the reader goroutine ends

	buf     []byte // the current chunk's buffer, owned by Next until the next chunk
	cur     []byte // the unread part of buf
	err     error  // how the stream ended, once the last chunk is in
	line    []byte // a line that spans chunks
	skip    bool   // discard input up to the next newline: the rest of a line too long
	pend    chunk  // a chunk Drained took from full, to be the next one
	pending bool
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

// NewLines starts reading r, in lines of at most max bytes (not counting
// the line's end). Stop ends the reader goroutine once its Read returns.
func NewLines(r io.Reader, max int) *Lines {
	l := &Lines{max: max, full: make(chan chunk, chunkCount), free: make(chan []byte, chunkCount), quit: make(chan struct{})}
	for range chunkCount {
		l.free <- make([]byte, chunkSize)
	}
	go l.read(r)
	return l
}

// read fills free buffers from r and hands them to Next, until r ends or
// Stop is called.
func (l *Lines) read(r io.Reader) {
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

// Stop lets the reader goroutine end. The source is not used after it.
func (l *Lines) Stop() { l.once.Do(func() { close(l.quit) }) }

// Next returns the next line, valid until the following call; io.EOF at the
// end of the input; ErrTooLong for a line over the maximum (the
// following call goes on after that line); ctx's error if ctx ends while it
// waits.
func (l *Lines) Next(ctx context.Context) ([]byte, error) {
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
		if err := l.fill(ctx); err != nil {
			return nil, err
		}
	}
	l.line = l.line[:0]
	for {
		if i := bytes.IndexByte(l.cur, '\n'); i >= 0 {
			seg := l.cur[:i+1]
			l.cur = l.cur[i+1:]
			if len(l.line) == 0 { // the whole line is in the chunk: no copy
				if len(seg) > l.max+2 { // +2: the "\r\n" that is not sent
					return nil, ErrTooLong
				}
				return trimEOL(seg), nil
			}
			if len(l.line)+len(seg) > l.max+2 {
				return nil, ErrTooLong
			}
			l.line = append(l.line, seg...)
			return trimEOL(l.line), nil
		}
		if len(l.cur) > 0 { // the line goes on in the next chunk
			if len(l.line)+len(l.cur) > l.max+2 {
				l.cur, l.skip = nil, true
				return nil, ErrTooLong
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
		if err := l.fill(ctx); err != nil {
			return nil, err
		}
	}
}

// fill makes the next chunk current, waiting for it if need be, and gives
// the current buffer back to the reader.
func (l *Lines) fill(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
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
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.buf, l.cur, l.err = c.b, c.b, c.err
	return nil
}

// Drained reports whether no more input is ready without waiting: the
// current chunk is used up and no other one with data waits. (The end of the
// stream waiting does not count: what was read is flushed before send goes
// on to "!DISCONNECT", as it would be if the end had not come yet.)
func (l *Lines) Drained() bool {
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

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
