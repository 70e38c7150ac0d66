package transport

import (
	"errors"
	"fmt"
	"io"
)

// Buffer sizes of a Reader. A Reader starts small, so that thousands of idle
// sessions cost little, and doubles its buffer only when the bytes that
// actually arrive fill it, up to maxBuffer. Payloads larger than maxBuffer are
// read into a separate slice that also grows only as bytes arrive.
const (
	minBuffer = 512
	maxBuffer = 64 << 10
)

// State tells where a Reader is in the stream. Callers use it to pick a read
// deadline: idle between frames, stricter inside one.
type State uint8

const (
	// Idle: between frames; no byte of the next frame has been read.
	Idle State = iota
	// InHeader: some but not all of a header has been read.
	InHeader
	// InPayload: a header has been read and its payload has not.
	InPayload
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case InHeader:
		return "header"
	case InPayload:
		return "payload"
	}
	return "unknown"
}

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	rd   io.Reader
	max  int
	buf  []byte // buffered input is buf[r:w]
	r, w int
	grow bool   // the last read filled the buffer: grow it when space runs out
	big  []byte // the current payload when it exceeds maxBuffer
	err  error  // sticky: a protocol error, or the read error once the buffer is drained

	// The header FrameBuffered parsed, so that ReadFrame does not parse it
	// again: its length, valid while peekAt == r+1 (0: none).
	peekAt, peekN int

	state State
}

// NewReader returns a Reader that reads frames from rd and refuses payloads
// longer than max bytes (DefaultMaxPayload if max <= 0; at most
// MaxPayloadLimit).
func NewReader(rd io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxPayload
	}
	if max > MaxPayloadLimit {
		max = MaxPayloadLimit
	}
	return &Reader{rd: rd, max: max}
}

// State reports where the reader is in the stream; see State.
func (r *Reader) State() State { return r.state }

// Held reports how many bytes of memory the reader holds: its buffer and a
// large payload being read. A server counts it against its memory budget
// before each read from the stream.
func (r *Reader) Held() int { return cap(r.buf) + cap(r.big) }

// Buffered reports how many bytes have been read from the stream and not yet
// returned as part of a frame. A caller that processes frames in batches uses
// it to learn when the input has run dry: when no complete frame is buffered,
// the next ReadFrame will block on the stream.
func (r *Reader) Buffered() int { return r.w - r.r }

// FrameBuffered reports whether a whole frame is buffered, so that the next
// ReadFrame returns without reading from the stream.
func (r *Reader) FrameBuffered() bool {
	if r.w-r.r < HeaderSize {
		return false
	}
	n, err := ParseHeader(r.buf[r.r : r.r+HeaderSize])
	if err == nil {
		r.peekAt, r.peekN = r.r+1, n
	}
	return err != nil || n > r.max || r.w-r.r >= HeaderSize+n
}

// ReadFrame reads the next frame and returns its payload. The payload is valid
// until the next call to ReadFrame; copy it to keep it.
//
// At the end of the stream between frames it returns io.EOF. Bytes that break
// the protocol give a *ProtocolError wrapping ErrBadHeader, ErrFrameTooLarge
// or ErrTruncated; after one, every later call returns it again. Other errors
// are the underlying reader's, wrapped.
func (r *Reader) ReadFrame() ([]byte, error) {
	r.big = nil
	if _, ok := r.err.(*ProtocolError); ok {
		return nil, r.err
	}
	if err := r.fill(HeaderSize); err != nil {
		if errors.Is(err, io.EOF) {
			if r.w == r.r {
				r.state = Idle
				return nil, io.EOF
			}
			return nil, r.fail(&ProtocolError{
				Err:    ErrTruncated,
				Detail: fmt.Sprintf("stream ended after %d of %d header bytes", r.w-r.r, HeaderSize),
				Cause:  io.ErrUnexpectedEOF,
			})
		}
		return nil, fmt.Errorf("transport: read header: %w", err)
	}
	h := r.buf[r.r : r.r+HeaderSize]
	var n int
	if r.peekAt == r.r+1 {
		n = r.peekN
	} else {
		var err error
		if n, err = ParseHeader(h); err != nil {
			return nil, r.fail(err)
		}
	}
	if n > r.max {
		return nil, r.fail(&ProtocolError{Err: ErrFrameTooLarge, Header: append([]byte(nil), h...), Length: n, Max: r.max})
	}
	r.r += HeaderSize
	r.state = InPayload
	if n > maxBuffer {
		return r.readBig(n)
	}
	if err := r.fill(n); err != nil {
		return nil, r.payloadErr(err, n, r.w-r.r)
	}
	p := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	r.state = r.idleState()
	return p, nil
}

// readBig reads a payload longer than maxBuffer into its own slice, growing it
// only as bytes arrive.
func (r *Reader) readBig(n int) ([]byte, error) {
	have := min(n, r.w-r.r)
	// Start from the bytes that arrived (at least minBuffer), not from
	// maxBuffer: a header alone must not cost 64 KiB, or 1000 connections
	// that each send one and stall would hold 64 MiB.
	p := make([]byte, have, max(have, minBuffer))
	copy(p, r.buf[r.r:r.r+have])
	r.r += have
	for len(p) < n {
		if r.err != nil {
			return nil, r.payloadErr(r.err, n, len(p))
		}
		if len(p) == cap(p) {
			p = append(p, make([]byte, min(n, 2*cap(p))-len(p))...)[:len(p)]
		}
		r.big = p // so that Held counts it while it fills
		m, err := r.readSome(p[len(p):min(n, cap(p))])
		p = p[:len(p)+m]
		if err != nil {
			r.err = err // reported now if the payload is short, else by the next call
		}
	}
	r.big = p
	r.state = r.idleState()
	return p, nil
}

func (r *Reader) idleState() State {
	if r.w > r.r {
		return InHeader
	}
	return Idle
}

func (r *Reader) payloadErr(err error, n, got int) error {
	if errors.Is(err, io.EOF) {
		return r.fail(&ProtocolError{
			Err:    ErrTruncated,
			Length: n,
			Detail: fmt.Sprintf("stream ended after %d of %d payload bytes", got, n),
			Cause:  io.ErrUnexpectedEOF,
		})
	}
	// The rest of this payload will never arrive: drop the part that did, so
	// that later calls report err instead of parsing it as frames.
	r.r = r.w
	return fmt.Errorf("transport: read payload: %w", err)
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// fill reads until at least need bytes are buffered. It grows the buffer only
// when the bytes that arrived fill it, so memory follows the bytes received,
// not the lengths claimed.
func (r *Reader) fill(need int) error {
	if r.w-r.r >= need {
		return nil
	}
	if r.state == Idle && r.w > r.r {
		r.state = InHeader
	}
	if r.err != nil {
		return r.err
	}
	for r.w-r.r < need {
		if r.w == len(r.buf) {
			r.makeRoom()
		}
		free := len(r.buf) - r.w
		n, err := r.readSome(r.buf[r.w:])
		r.w += n
		r.grow = n == free
		if r.state == Idle && n > 0 {
			r.state = InHeader
		}
		if err != nil {
			if r.w-r.r >= need {
				// Keep the error for when the buffered bytes are used up.
				r.err = err
				return nil
			}
			r.err = err
			return err
		}
	}
	return nil
}

// makeRoom makes free space at the end of the buffer: by allocating the first
// buffer, by moving buffered bytes to the front, or by doubling the buffer when
// it is full of unread bytes or when reads keep filling it.
func (r *Reader) makeRoom() {
	r.peekAt = 0 // the buffered bytes move
	pending := r.w - r.r
	size := len(r.buf)
	switch {
	case size == 0:
		size = minBuffer
	case pending == size || (r.grow && size < maxBuffer):
		size = min(2*size, maxBuffer)
	}
	if size != len(r.buf) {
		nb := make([]byte, size)
		copy(nb, r.buf[r.r:r.w])
		r.buf = nb
	} else {
		copy(r.buf, r.buf[r.r:r.w])
	}
	r.r, r.w = 0, pending
}

// readSome calls the underlying reader, guarding against readers that return
// neither bytes nor an error.
func (r *Reader) readSome(p []byte) (int, error) {
	for range 100 {
		n, err := r.rd.Read(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}
