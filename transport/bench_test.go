package transport

import (
	"fmt"
	"testing"
)

var benchSizes = []int{0, 32, 1 << 10, 64 << 10}

// frameStream returns at least 1 MiB of back-to-back frames of size n (at
// least 16 frames), for a cycleReader.
func frameStream(n int) []byte {
	frame := AppendFrame(nil, []byte(textPayload(n, uint64(n))))
	count := max(16, (1<<20)/len(frame))
	var b []byte
	for range count {
		b = append(b, frame...)
	}
	return b
}

func BenchmarkEncode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := []byte(textPayload(n, 1))
			buf := AppendFrame(nil, p)
			b.SetBytes(int64(HeaderSize + n))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendFrame(buf[:0], p)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := NewReader(&cycleReader{data: frameStream(n)}, 0)
			// Warm up: let the buffer grow to its working size.
			for range 64 {
				if _, err := r.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(HeaderSize + n))
			b.ReportAllocs()
			for b.Loop() {
				p, err := r.ReadFrame()
				if err != nil || len(p) != n {
					b.Fatalf("ReadFrame = %d bytes, %v", len(p), err)
				}
			}
		})
	}
}

// Decoding into the Reader's buffer and encoding into a reused buffer do not
// allocate, up to and including 64 KiB payloads.
func TestZeroAllocs(t *testing.T) {
	for _, n := range benchSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := NewReader(&cycleReader{data: frameStream(n)}, 0)
			for range 64 {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			}
			if a := testing.AllocsPerRun(1000, func() {
				p, err := r.ReadFrame()
				if err != nil || len(p) != n {
					t.Fatalf("ReadFrame = %d bytes, %v", len(p), err)
				}
			}); a != 0 {
				t.Errorf("decode of %d-byte payloads: %v allocs per frame, want 0", n, a)
			}

			p := []byte(textPayload(n, 2))
			buf := AppendFrame(nil, p)
			if a := testing.AllocsPerRun(1000, func() {
				buf = AppendFrame(buf[:0], p)
			}); a != 0 {
				t.Errorf("encode of %d-byte payloads: %v allocs per frame, want 0", n, a)
			}
		})
	}
}

// The Reader's buffer stops growing at maxBuffer however large the frames.
func TestReaderBufferCapped(t *testing.T) {
	r := NewReader(&cycleReader{data: frameStream(maxBuffer + 1)}, 0)
	for range 20 {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.buf) > maxBuffer {
		t.Fatalf("buffer is %d bytes, cap is %d", len(r.buf), maxBuffer)
	}
}
