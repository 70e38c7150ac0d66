package transport

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
)

// peekChunkReader returns data in chunks of random sizes.
type peekChunkReader struct {
	data []byte
	rnd  *rand.Rand
}

func (c *peekChunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rnd.IntN(300))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FrameBuffered remembers the header it parsed for the next ReadFrame; with
// calls interleaved at random, over chunked input whose buffer moves and
// grows, every frame still comes out whole and in order.
func TestFrameBufferedThenReadFrame(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	var stream []byte
	var want [][]byte
	for i := range 3000 {
		p := bytes.Repeat([]byte(strconv.Itoa(i)+"."), rnd.IntN(200))
		want = append(want, p)
		stream = AppendFrame(stream, p)
	}
	r := NewReader(&peekChunkReader{data: stream, rnd: rnd}, 0)
	for i, w := range want {
		for range rnd.IntN(3) {
			r.FrameBuffered()
		}
		p, err := r.ReadFrame()
		if err != nil || !bytes.Equal(p, w) {
			t.Fatalf("frame %d: got %q, %v; want %q", i, p, err, w)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}
