package transport

import (
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// tutorialHeader builds a header exactly as the Python tutorial does:
//
//	send_length = str(msg_length).encode()
//	send_length += b' ' * (HEADER - len(send_length))
func tutorialHeader(n int) string {
	s := strconv.Itoa(n)
	return s + strings.Repeat(" ", HeaderSize-len(s))
}

// tutorialFrame is the tutorial client's send(): header, then the message.
func tutorialFrame(msg string) string {
	return tutorialHeader(len(msg)) + msg
}

// pad right-pads s with spaces to HeaderSize bytes (it may be longer than
// HeaderSize only if the test wants a wrong-length header).
func pad(s string) string {
	if len(s) >= HeaderSize {
		return s
	}
	return s + strings.Repeat(" ", HeaderSize-len(s))
}

// countingReader counts the bytes and the calls its source has served.
type countingReader struct {
	r     io.Reader
	n     int
	calls int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.calls++
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// chunkReader serves data in chunks whose sizes come from a seeded PRNG
// (1..maxChunk bytes), then io.EOF.
type chunkReader struct {
	data     []byte
	rng      *rand.Rand
	maxChunk int
}

func newChunkReader(data []byte, seed uint64, maxChunk int) *chunkReader {
	return &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), maxChunk: maxChunk}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rng.IntN(c.maxChunk)
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// scriptReader returns a fixed list of (data, error) results, one per Read
// call (data longer than the caller's buffer is served over several calls
// before the error is given). After the script it returns (0, final). It
// fails the test if Read is called again after it has returned a non-nil
// error: a Reader must not read past an error it has already seen.
type scriptReader struct {
	t      testing.TB
	steps  []step
	final  error
	failed error // the error returned, once one has been
	calls  int
	// onRead, if set, is called at the start of every Read.
	onRead func()
}

type step struct {
	data string
	err  error
}

func (s *scriptReader) Read(p []byte) (int, error) {
	s.calls++
	if s.onRead != nil {
		s.onRead()
	}
	if s.failed != nil {
		s.t.Errorf("Read called again after it returned %v", s.failed)
		return 0, s.failed
	}
	if len(s.steps) == 0 {
		s.failed = s.final
		return 0, s.final
	}
	st := &s.steps[0]
	n := copy(p, st.data)
	st.data = st.data[n:]
	if st.data != "" {
		return n, nil
	}
	err := st.err
	s.steps = s.steps[1:]
	if err != nil {
		s.failed = err
	}
	return n, err
}

// cycleReader serves data over and over, forever, without allocating.
type cycleReader struct {
	data []byte
	off  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], c.data[c.off:])
		n += m
		c.off += m
		if c.off == len(c.data) {
			c.off = 0
		}
	}
	return n, nil
}

// readerFunc adapts a function to io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// readAll reads frames until an error, copying each payload.
func readAll(r *Reader) ([]string, error) {
	var out []string
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return out, err
		}
		out = append(out, string(p))
	}
}

// wantProtocolError checks that err is a *ProtocolError wrapping sentinel and
// returns it.
func wantProtocolError(t testing.TB, err, sentinel error) *ProtocolError {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want one wrapping %v", err, sentinel)
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
	}
	if pe.Err != sentinel {
		t.Fatalf("ProtocolError.Err = %v, want %v", pe.Err, sentinel)
	}
	return pe
}

var errBoom = errors.New("boom")
