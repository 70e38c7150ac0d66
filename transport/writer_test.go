package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// recordingWriter keeps every Write call's bytes separately.
type recordingWriter struct {
	mu     sync.Mutex
	writes [][]byte
	fail   error // returned from every Write once set
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		w.writes = append(w.writes, nil) // count the call
		return 0, w.fail
	}
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (w *recordingWriter) all() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.writes, nil)
}

func (w *recordingWriter) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

func TestWriterOneWritePerFrame(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 0)
	msgs := []string{"Hi", "", "héllo ✓", Disconnect, textPayload(maxBuffer+1, 1), textPayload(DefaultMaxPayload, 2)}
	for i, m := range msgs {
		if err := w.WriteFrame([]byte(m)); err != nil {
			t.Fatalf("WriteFrame %d: %v", i, err)
		}
		if rw.calls() != i+1 {
			t.Fatalf("after %d frames: %d Write calls", i+1, rw.calls())
		}
		if got, want := string(rw.writes[i]), tutorialFrame(m); got != want {
			t.Fatalf("Write %d = %.80q, want %.80q", i, got, want)
		}
		if w.Buffered() != 0 {
			t.Fatalf("Buffered after WriteFrame = %d", w.Buffered())
		}
	}
}

// The doc's example, as the tutorial's server would receive it.
func TestWriterTutorialBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	for _, m := range []string{"Hi", Disconnect} {
		if err := w.WriteFrame([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	want := "2" + strings.Repeat(" ", 63) + "Hi" + "11" + strings.Repeat(" ", 62) + "!DISCONNECT"
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
}

func TestWriterTooLarge(t *testing.T) {
	for _, max := range []int{1, 100, maxBuffer, DefaultMaxPayload} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			rw := &recordingWriter{}
			w := NewWriter(rw, max)
			big := make([]byte, max+1)
			for _, send := range []func([]byte) error{w.WriteFrame, w.Buffer} {
				err := send(big)
				pe := wantProtocolError(t, err, ErrFrameTooLarge)
				if pe.Length != max+1 || pe.Max != max {
					t.Errorf("ProtocolError = %+v", pe)
				}
				if rw.calls() != 0 || w.Buffered() != 0 {
					t.Fatalf("refused frame: %d Write calls, %d bytes buffered", rw.calls(), w.Buffered())
				}
			}
			// Not sticky: the caller's mistake does not break the stream.
			ok := make([]byte, max)
			if err := w.WriteFrame(ok); err != nil {
				t.Fatalf("WriteFrame of %d bytes after a refusal: %v", max, err)
			}
			if got := rw.all(); !bytes.Equal(got, AppendFrame(nil, ok)) {
				t.Fatalf("wrote %d bytes, want the one frame of %d", len(got), HeaderSize+max)
			}
		})
	}
}

// A refused frame leaves frames buffered before it in place.
func TestWriterTooLargeKeepsBuffered(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 10)
	if err := w.Buffer([]byte("a")); err != nil {
		t.Fatal(err)
	}
	wantProtocolError(t, w.WriteFrame(make([]byte, 11)), ErrFrameTooLarge)
	if rw.calls() != 0 || w.Buffered() != HeaderSize+1 {
		t.Fatalf("after refusal: %d writes, %d buffered", rw.calls(), w.Buffered())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if string(rw.all()) != tutorialFrame("a") {
		t.Fatalf("wrote %q", rw.all())
	}
}

func TestNewWriterMaxClamped(t *testing.T) {
	for _, tt := range []struct{ arg, want int }{
		{0, DefaultMaxPayload}, {-1, DefaultMaxPayload}, {MaxPayloadLimit + 1, MaxPayloadLimit}, {5, 5},
	} {
		w := NewWriter(io.Discard, tt.arg)
		if w.max != tt.want {
			t.Errorf("NewWriter(max=%d).max = %d, want %d", tt.arg, w.max, tt.want)
		}
	}
	// The clamped default is enforced, not just stored.
	w := NewWriter(io.Discard, 0)
	wantProtocolError(t, w.WriteFrame(make([]byte, DefaultMaxPayload+1)), ErrFrameTooLarge)
	if err := w.WriteFrame(make([]byte, DefaultMaxPayload)); err != nil {
		t.Fatal(err)
	}
}

func TestWriterBufferAndFlush(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 0)
	msgs := []string{"one", "", "three"}
	want := ""
	for _, m := range msgs {
		if err := w.Buffer([]byte(m)); err != nil {
			t.Fatal(err)
		}
		want += tutorialFrame(m)
		if rw.calls() != 0 {
			t.Fatalf("Buffer wrote before the buffer was full")
		}
		if w.Buffered() != len(want) {
			t.Fatalf("Buffered = %d, want %d", w.Buffered(), len(want))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if rw.calls() != 1 || string(rw.writes[0]) != want {
		t.Fatalf("Flush: %d writes, first %q; want one write of %q", rw.calls(), rw.writes, want)
	}
	if w.Buffered() != 0 {
		t.Fatalf("Buffered after Flush = %d", w.Buffered())
	}
	// Flushing an empty buffer writes nothing.
	if err := w.Flush(); err != nil || rw.calls() != 1 {
		t.Fatalf("empty Flush: %v, %d writes", err, rw.calls())
	}
}

// WriteFrame sends the buffered frames and its own in the same Write.
func TestWriterWriteFrameFlushesBuffered(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 0)
	for _, m := range []string{"a", "b"} {
		if err := w.Buffer([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFrame([]byte("c")); err != nil {
		t.Fatal(err)
	}
	want := tutorialFrame("a") + tutorialFrame("b") + tutorialFrame("c")
	if rw.calls() != 1 || string(rw.writes[0]) != want {
		t.Fatalf("%d writes %q, want one write of %q", rw.calls(), rw.writes, want)
	}
}

// Buffer writes by itself once 64 KiB have gathered, in one Write.
func TestWriterBufferFlushesWhenFull(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 0)
	msg := []byte(textPayload(1000, 3))
	frameLen := HeaderSize + len(msg)
	perBatch := (flushSize + frameLen - 1) / frameLen // frames that reach flushSize
	for i := 1; i <= perBatch; i++ {
		if err := w.Buffer(msg); err != nil {
			t.Fatal(err)
		}
		wantCalls := 0
		if i == perBatch {
			wantCalls = 1
		}
		if rw.calls() != wantCalls {
			t.Fatalf("after %d frames (%d bytes): %d writes, want %d", i, i*frameLen, rw.calls(), wantCalls)
		}
	}
	if len(rw.writes[0]) != perBatch*frameLen || w.Buffered() != 0 {
		t.Fatalf("batch write is %d bytes, %d left buffered", len(rw.writes[0]), w.Buffered())
	}
	got, err := readAll(NewReader(bytes.NewReader(rw.all()), 0))
	if err != io.EOF || len(got) != perBatch {
		t.Fatalf("batch decodes to %d frames, %v", len(got), err)
	}
	// One frame larger than the flush size goes out at once too.
	big := make([]byte, flushSize+1)
	if err := w.Buffer(big); err != nil {
		t.Fatal(err)
	}
	if rw.calls() != 2 || w.Buffered() != 0 {
		t.Fatalf("big Buffer: %d writes, %d buffered", rw.calls(), w.Buffered())
	}
}

func TestWriterConcurrent(t *testing.T) {
	const goroutines, perG = 16, 200
	var out bytes.Buffer
	var mu sync.Mutex
	// An unlocked io.Writer underneath: the Writer must serialise. A short
	// chunked writer would expose interleaving as corrupt frames.
	sink := writerFunc(func(p []byte) (int, error) {
		if !mu.TryLock() {
			t.Error("concurrent Write calls on the underlying writer")
			mu.Lock()
		}
		defer mu.Unlock()
		// Write in pieces so that a second writer could sneak in between.
		for i := 0; i < len(p); i += 7 {
			out.Write(p[i:min(i+7, len(p))])
		}
		return len(p), nil
	})
	w := NewWriter(sink, 0)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				// Sizes vary, some cross the flush size, so frames differ in length.
				msg := fmt.Sprintf("g%02d-m%03d-", g, i) + strings.Repeat(string(rune('a'+g)), (i*37)%3000)
				if i%50 == 0 {
					msg += strings.Repeat("Z", maxBuffer)
				}
				var err error
				if i%3 == 0 {
					err = w.Buffer([]byte(msg))
				} else {
					err = w.WriteFrame([]byte(msg))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(NewReader(bytes.NewReader(out.Bytes()), 0))
	if err != io.EOF {
		t.Fatalf("decoding the result: %v after %d frames", err, len(got))
	}
	if len(got) != goroutines*perG {
		t.Fatalf("%d frames, want %d", len(got), goroutines*perG)
	}
	next := make([]int, goroutines) // per goroutine, frames arrive in order
	for _, m := range got {
		var g, i int
		if _, err := fmt.Sscanf(m, "g%02d-m%03d-", &g, &i); err != nil {
			t.Fatalf("frame %.40q: %v", m, err)
		}
		want := fmt.Sprintf("g%02d-m%03d-", g, i) + strings.Repeat(string(rune('a'+g)), (i*37)%3000)
		if i%50 == 0 {
			want += strings.Repeat("Z", maxBuffer)
		}
		if m != want {
			t.Fatalf("frame g%d m%d corrupted: %d bytes, want %d", g, i, len(m), len(want))
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: frame %d arrived, want %d", g, i, next[g])
		}
		next[g]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestWriterStickyError(t *testing.T) {
	rw := &recordingWriter{}
	w := NewWriter(rw, 0)
	if err := w.WriteFrame([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	rw.fail = errBoom
	err := w.WriteFrame([]byte("lost"))
	if !errors.Is(err, errBoom) {
		t.Fatalf("WriteFrame error = %v, want one wrapping %v", err, errBoom)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		t.Fatalf("write error reported as a protocol error: %v", err)
	}
	calls := rw.calls()
	rw.mu.Lock()
	rw.fail = nil // the writer recovers; the Writer must not pretend the stream is intact
	rw.mu.Unlock()
	for _, op := range []func() error{
		func() error { return w.WriteFrame([]byte("x")) },
		func() error { return w.Buffer([]byte("x")) },
		w.Flush,
	} {
		if err2 := op(); !errors.Is(err2, errBoom) {
			t.Fatalf("later call: %v, want the sticky %v", err2, errBoom)
		}
	}
	if rw.calls() != calls {
		t.Fatalf("%d Write calls after the error", rw.calls()-calls)
	}
	if string(rw.all()) != tutorialFrame("ok") {
		t.Fatalf("stream = %q", rw.all())
	}
}

// The Writer does not keep a buffer grown for one huge frame.
func TestWriterReleasesHugeBuffer(t *testing.T) {
	w := NewWriter(io.Discard, 0)
	if err := w.WriteFrame(make([]byte, DefaultMaxPayload)); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) > 4*flushSize {
		t.Fatalf("buffer of %d bytes kept after a huge frame", cap(w.buf))
	}
	if err := w.WriteFrame([]byte("small")); err != nil {
		t.Fatal(err)
	}
}
