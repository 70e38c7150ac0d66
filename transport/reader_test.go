package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// textPayload returns n bytes of printable text that differs with seed, so
// that a frame read from the wrong offset cannot compare equal.
func textPayload(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

// roundTripPayloads covers both buffer paths and their boundaries.
func roundTripPayloads() []string {
	return []string{
		"",
		"Hi",
		"Hello World!",
		"",
		"héllo wörld ✓ 日本語 🎉",
		textPayload(1, 1),
		textPayload(63, 2),
		textPayload(64, 3),
		textPayload(minBuffer-HeaderSize, 4), // frame exactly fills the first buffer
		textPayload(minBuffer, 5),
		textPayload(4096, 6),
		textPayload(maxBuffer-HeaderSize, 7),
		textPayload(maxBuffer, 8),   // 64 KiB: the largest small-path payload
		textPayload(maxBuffer+1, 9), // 64 KiB + 1: the big path
		"",
		textPayload(3*maxBuffer+17, 10),
		"tail",
		Disconnect,
	}
}

func encodeAll(payloads []string) []byte {
	var b []byte
	for _, p := range payloads {
		b = AppendFrame(b, []byte(p))
	}
	return b
}

type feed struct {
	name string
	wrap func([]byte) io.Reader
}

func feeds() []feed {
	fs := []feed{
		{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"OneByteReader", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"HalfReader", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"DataErrReader", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		{"DataErrReader/OneByte", func(b []byte) io.Reader {
			return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(b)))
		}},
		{"DataErrReader/Half", func(b []byte) io.Reader {
			return iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(b)))
		}},
	}
	for _, maxChunk := range []int{3, 67, 700, 5000, 100000} {
		for seed := uint64(1); seed <= 3; seed++ {
			fs = append(fs, feed{fmt.Sprintf("random/max%d/seed%d", maxChunk, seed), func(b []byte) io.Reader {
				return newChunkReader(b, seed, maxChunk)
			}})
		}
	}
	return fs
}

func TestReaderRoundTrip(t *testing.T) {
	payloads := roundTripPayloads()
	stream := encodeAll(payloads)
	for _, f := range feeds() {
		t.Run(f.name, func(t *testing.T) {
			r := NewReader(f.wrap(stream), 0)
			got, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("after %d frames: error %v, want io.EOF", len(got), err)
			}
			if len(got) != len(payloads) {
				t.Fatalf("read %d frames, want %d", len(got), len(payloads))
			}
			for i := range payloads {
				if got[i] != payloads[i] {
					t.Fatalf("frame %d: got %d bytes %.40q, want %d bytes %.40q",
						i, len(got[i]), got[i], len(payloads[i]), payloads[i])
				}
			}
			if r.State() != Idle {
				t.Errorf("State() after EOF = %v, want idle", r.State())
			}
			if r.Buffered() != 0 {
				t.Errorf("Buffered() after EOF = %d", r.Buffered())
			}
			// EOF is repeated, not turned into something else.
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Errorf("second call after EOF: %v, want io.EOF", err)
			}
		})
	}
}

// The server side of the tutorial: it reads what the tutorial client sends.
func TestReaderTutorialStream(t *testing.T) {
	stream := tutorialFrame("Hello World!") + tutorialFrame("Hello Everyone!") +
		tutorialFrame("Hello Tim!") + tutorialFrame(Disconnect)
	r := NewReader(strings.NewReader(stream), 0)
	got, err := readAll(r)
	if err != io.EOF {
		t.Fatalf("error %v, want io.EOF", err)
	}
	want := []string{"Hello World!", "Hello Everyone!", "Hello Tim!", Disconnect}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Headers with leading spaces and leading zeros, as other senders may write.
func TestReaderAcceptsPaddingVariants(t *testing.T) {
	stream := strings.Repeat(" ", 62) + "03" + "abc" + pad("  0002") + "de" + strings.Repeat("0", 64)
	got, err := readAll(NewReader(strings.NewReader(stream), 0))
	if err != io.EOF || len(got) != 3 || got[0] != "abc" || got[1] != "de" || got[2] != "" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestReaderExactlyMax(t *testing.T) {
	for _, max := range []int{1, 100, maxBuffer, maxBuffer + 1, 200000, DefaultMaxPayload} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			p := textPayload(max, uint64(max))
			r := NewReader(iotest.HalfReader(bytes.NewReader(AppendFrame(nil, []byte(p)))), max)
			got, err := r.ReadFrame()
			if err != nil || string(got) != p {
				t.Fatalf("ReadFrame = %d bytes, %v; want %d bytes", len(got), err, max)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("then %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderTooLargeReadsNoPayload(t *testing.T) {
	for _, max := range []int{1, 100, maxBuffer - 1, maxBuffer, maxBuffer + 1, 200000, DefaultMaxPayload} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			header := tutorialHeader(max + 1)
			payload := textPayload(max+1, 1)
			// The header arrives in its own segment; the payload is ready
			// behind it. The Reader must not ask for any of it.
			src := &scriptReader{t: t, steps: []step{{data: header}, {data: payload}}, final: io.EOF}
			cr := &countingReader{r: src}
			r := NewReader(cr, max)
			p, err := r.ReadFrame()
			if p != nil {
				t.Errorf("payload returned with the error: %d bytes", len(p))
			}
			pe := wantProtocolError(t, err, ErrFrameTooLarge)
			if string(pe.Header) != header || pe.Length != max+1 || pe.Max != max {
				t.Errorf("ProtocolError = %+v", pe)
			}
			if cr.n != HeaderSize || cr.calls != 1 {
				t.Fatalf("consumed %d bytes in %d reads, want the %d header bytes in 1", cr.n, cr.calls, HeaderSize)
			}
			// Sticky: the same error again, still without reading.
			if _, err2 := r.ReadFrame(); err2 != err {
				t.Errorf("second call: %v, want the same error %v", err2, err)
			}
			if cr.n != HeaderSize || cr.calls != 1 {
				t.Fatalf("after second call: consumed %d bytes in %d reads", cr.n, cr.calls)
			}
		})
	}
}

// When the payload arrives in the same read as the header, the Reader has it
// in its buffer, but it must not go on to read the rest of it.
func TestReaderTooLargeStopsAfterFirstRead(t *testing.T) {
	max := 1000
	stream := tutorialFrame(textPayload(100000, 2))
	cr := &countingReader{r: strings.NewReader(stream)}
	r := NewReader(cr, max)
	_, err := r.ReadFrame()
	wantProtocolError(t, err, ErrFrameTooLarge)
	if cr.calls != 1 || cr.n > minBuffer {
		t.Fatalf("consumed %d bytes in %d reads, want one read of at most %d", cr.n, cr.calls, minBuffer)
	}
}

func TestNewReaderMaxClamped(t *testing.T) {
	for _, tt := range []struct{ arg, want int }{
		{0, DefaultMaxPayload},
		{-5, DefaultMaxPayload},
		{MaxPayloadLimit + 1, MaxPayloadLimit},
		{1 << 40, MaxPayloadLimit},
		{MaxPayloadLimit, MaxPayloadLimit},
		{7, 7},
	} {
		// A header one above the expected limit is refused with that limit...
		r := NewReader(strings.NewReader(tutorialHeader(tt.want+1)), tt.arg)
		_, err := r.ReadFrame()
		pe := wantProtocolError(t, err, ErrFrameTooLarge)
		if pe.Max != tt.want {
			t.Errorf("NewReader(max=%d): limit %d, want %d", tt.arg, pe.Max, tt.want)
		}
		// ... and one at the limit is accepted (truncated here, not refused).
		r = NewReader(strings.NewReader(tutorialHeader(tt.want)), tt.arg)
		_, err = r.ReadFrame()
		wantProtocolError(t, err, ErrTruncated)
	}
}

func TestReaderEOFBeforeHeader(t *testing.T) {
	for _, f := range feeds() {
		t.Run(f.name, func(t *testing.T) {
			r := NewReader(f.wrap(nil), 0)
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("empty stream: %v, want io.EOF itself", err)
			}
			r = NewReader(f.wrap(AppendFrame(nil, []byte("x"))), 0)
			if p, err := r.ReadFrame(); err != nil || string(p) != "x" {
				t.Fatalf("ReadFrame = %q, %v", p, err)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after a frame: %v, want io.EOF itself", err)
			}
		})
	}
}

func TestReaderTruncatedHeader(t *testing.T) {
	full := tutorialFrame("hello")
	for cut := 1; cut < HeaderSize; cut++ {
		for _, f := range feeds()[:4] {
			r := NewReader(f.wrap([]byte(full[:cut])), 0)
			p, err := r.ReadFrame()
			if p != nil {
				t.Fatalf("cut %d: payload returned with error", cut)
			}
			wantProtocolError(t, err, ErrTruncated)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("cut %d, %s: %v does not match io.ErrUnexpectedEOF", cut, f.name, err)
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("cut %d: truncation matches io.EOF, a clean end", cut)
			}
			if _, err2 := r.ReadFrame(); err2 != err {
				t.Fatalf("cut %d: second call %v, want the same error", cut, err2)
			}
		}
	}
	// A complete frame followed by part of a header.
	r := NewReader(strings.NewReader(full+full[:10]), 0)
	if p, err := r.ReadFrame(); err != nil || string(p) != "hello" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	_, err := r.ReadFrame()
	wantProtocolError(t, err, ErrTruncated)
}

func TestReaderTruncatedPayload(t *testing.T) {
	for _, n := range []int{1, 5, 1000, maxBuffer, maxBuffer + 1, 200000} {
		frame := tutorialFrame(textPayload(n, 3))
		for _, got := range []int{0, 1, n / 2, n - 1} {
			if got >= n && n > 0 {
				continue
			}
			for _, f := range feeds()[:4] {
				name := fmt.Sprintf("n%d/got%d/%s", n, got, f.name)
				r := NewReader(f.wrap([]byte(frame[:HeaderSize+got])), 0)
				p, err := r.ReadFrame()
				if p != nil {
					t.Fatalf("%s: payload returned with error", name)
				}
				pe := wantProtocolError(t, err, ErrTruncated)
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("%s: %v does not match io.ErrUnexpectedEOF", name, err)
				}
				if pe.Length != n {
					t.Fatalf("%s: Length = %d, want %d", name, pe.Length, n)
				}
				if want := fmt.Sprintf("stream ended after %d of %d payload bytes", got, n); pe.Detail != want {
					t.Fatalf("%s: Detail = %q, want %q", name, pe.Detail, want)
				}
				if _, err2 := r.ReadFrame(); err2 != err {
					t.Fatalf("%s: second call %v, want the same error", name, err2)
				}
			}
		}
	}
}

func TestReaderStickyBadHeader(t *testing.T) {
	bad := pad("12x")
	stream := tutorialFrame("ok") + bad + tutorialFrame("after")
	cr := &countingReader{r: iotest.OneByteReader(strings.NewReader(stream))}
	r := NewReader(cr, 0)
	if p, err := r.ReadFrame(); err != nil || string(p) != "ok" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	_, err := r.ReadFrame()
	pe := wantProtocolError(t, err, ErrBadHeader)
	if string(pe.Header) != bad {
		t.Fatalf("Header = %q, want %q", pe.Header, bad)
	}
	consumed := cr.n
	for range 3 {
		p, err2 := r.ReadFrame()
		if err2 != err || p != nil {
			t.Fatalf("later call = %q, %v; want the same error", p, err2)
		}
	}
	if cr.n != consumed {
		t.Fatalf("later calls read %d more bytes", cr.n-consumed)
	}
}

// Appending to a returned payload must not overwrite the next frame, which
// may already sit in the same buffer.
func TestReaderPayloadCapacity(t *testing.T) {
	r := NewReader(strings.NewReader(tutorialFrame("one")+tutorialFrame("two")), 0)
	p, err := r.ReadFrame()
	if err != nil || string(p) != "one" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	if cap(p) != len(p) {
		t.Errorf("payload cap %d > len %d", cap(p), len(p))
	}
	_ = append(p, strings.Repeat("X", 100)...)
	if p, err := r.ReadFrame(); err != nil || string(p) != "two" {
		t.Fatalf("second ReadFrame = %q, %v", p, err)
	}
}

// State is read from inside the underlying Read, the way session picks a
// deadline before each read.
func TestReaderStateDuringRead(t *testing.T) {
	var r *Reader
	var states []State
	small1, small2 := tutorialFrame("hello"), tutorialFrame("")
	bigPayload := textPayload(maxBuffer+1000, 9)
	big := tutorialFrame(bigPayload)

	var steps []step
	for i := range len(small1) {
		steps = append(steps, step{data: small1[i : i+1]})
	}
	for i := range len(small2) {
		steps = append(steps, step{data: small2[i : i+1]})
	}
	steps = append(steps, step{data: big[:HeaderSize]})
	// 8 KiB chunks. How many Read calls the payload takes depends on how
	// the payload's slice grows (from the bytes that arrived), so only the
	// state each call sees is checked.
	for off := HeaderSize; off < len(big); off += 8192 {
		steps = append(steps, step{data: big[off:min(off+8192, len(big))]})
	}
	src := &scriptReader{t: t, steps: steps, final: io.EOF}
	src.onRead = func() { states = append(states, r.State()) }
	r = NewReader(src, 0)

	expect := func(want ...State) {
		t.Helper()
		if !slices.Equal(states, want) {
			t.Fatalf("states seen by Read = %v\nwant %v", states, want)
		}
		states = states[:0]
	}
	rep := func(s State, n int) []State {
		out := make([]State, n)
		for i := range out {
			out[i] = s
		}
		return out
	}

	if r.State() != Idle {
		t.Fatalf("new Reader: %v", r.State())
	}
	p, err := r.ReadFrame()
	if err != nil || string(p) != "hello" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	expect(append(append([]State{Idle}, rep(InHeader, 63)...), rep(InPayload, 5)...)...)
	if r.State() != Idle {
		t.Fatalf("after frame: %v, want idle", r.State())
	}

	if p, err = r.ReadFrame(); err != nil || len(p) != 0 {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	expect(append([]State{Idle}, rep(InHeader, 63)...)...)
	if r.State() != Idle {
		t.Fatalf("after empty frame: %v, want idle", r.State())
	}

	if p, err = r.ReadFrame(); err != nil || string(p) != bigPayload {
		t.Fatalf("big ReadFrame = %d bytes, %v", len(p), err)
	}
	if len(states) < 2 || states[0] != Idle || !slices.Equal(states[1:], rep(InPayload, len(states)-1)) {
		t.Fatalf("states seen by Read during a big frame = %v, want idle, then payload only", states)
	}
	states = states[:0]
	if r.State() != Idle {
		t.Fatalf("after big frame: %v, want idle", r.State())
	}

	if _, err = r.ReadFrame(); err != io.EOF {
		t.Fatalf("ReadFrame = %v, want io.EOF", err)
	}
	expect(Idle)
	if r.State() != Idle {
		t.Fatalf("after EOF: %v, want idle", r.State())
	}
}

// When bytes of the next frame came with the previous one, the Reader is
// inside the next header, even before ReadFrame is called again.
func TestReaderStateWithBufferedNextFrame(t *testing.T) {
	var r *Reader
	var states []State
	a, b := tutorialFrame("aa"), tutorialFrame("bb")
	src := &scriptReader{t: t, steps: []step{{data: a + b[:10]}, {data: b[10:]}}, final: io.EOF}
	src.onRead = func() { states = append(states, r.State()) }
	r = NewReader(src, 0)
	if p, err := r.ReadFrame(); err != nil || string(p) != "aa" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	if r.State() != InHeader {
		t.Fatalf("State with 10 header bytes buffered = %v, want header", r.State())
	}
	if p, err := r.ReadFrame(); err != nil || string(p) != "bb" {
		t.Fatalf("ReadFrame = %q, %v", p, err)
	}
	if want := []State{Idle, InHeader}; !slices.Equal(states, want) {
		t.Fatalf("states seen by Read = %v, want %v", states, want)
	}
	if r.State() != Idle {
		t.Fatalf("State = %v, want idle", r.State())
	}
}

func TestReaderBuffered(t *testing.T) {
	frames := []string{tutorialFrame("one"), tutorialFrame("two!"), tutorialFrame("")}
	all := strings.Join(frames, "")
	// Everything arrives in one read, plus half of a fourth frame.
	partial := tutorialFrame("four-four")[:70]
	r := NewReader(&scriptReader{t: t, steps: []step{{data: all + partial}}, final: io.EOF}, 0)
	if r.Buffered() != 0 || r.FrameBuffered() {
		t.Fatalf("new Reader: Buffered %d, FrameBuffered %v", r.Buffered(), r.FrameBuffered())
	}
	remaining := len(all) + len(partial)
	for i, f := range frames {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		remaining -= len(f)
		if r.Buffered() != remaining {
			t.Fatalf("after frame %d: Buffered = %d, want %d", i, r.Buffered(), remaining)
		}
		if want := i < len(frames)-1; r.FrameBuffered() != want {
			t.Fatalf("after frame %d: FrameBuffered = %v, want %v", i, r.FrameBuffered(), want)
		}
	}
	// 70 bytes: a full header but not the payload.
	if r.Buffered() != 70 || r.FrameBuffered() {
		t.Fatalf("partial frame: Buffered %d, FrameBuffered %v", r.Buffered(), r.FrameBuffered())
	}
}

func TestReaderFrameBufferedErrors(t *testing.T) {
	// A bad or too-large header is "buffered" too: the next ReadFrame returns
	// its error without touching the stream.
	for _, tt := range []struct {
		name   string
		stream string
		err    error
	}{
		{"bad header", tutorialFrame("ok") + pad("zz"), ErrBadHeader},
		{"too large", tutorialFrame("ok") + tutorialHeader(101), ErrFrameTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &scriptReader{t: t, steps: []step{{data: tt.stream}}, final: io.EOF}
			r := NewReader(src, 100)
			if _, err := r.ReadFrame(); err != nil {
				t.Fatal(err)
			}
			if !r.FrameBuffered() {
				t.Fatalf("FrameBuffered = false with a complete %s buffered", tt.name)
			}
			calls := src.calls
			_, err := r.ReadFrame()
			wantProtocolError(t, err, tt.err)
			if src.calls != calls {
				t.Fatalf("ReadFrame read from the stream after FrameBuffered said true")
			}
		})
	}
}

// FrameBuffered is exact: true means the next ReadFrame will not read from
// the stream, false means it will.
func TestReaderFrameBufferedPredictsReads(t *testing.T) {
	payloads := roundTripPayloads()
	stream := encodeAll(payloads)
	for seed := uint64(1); seed <= 20; seed++ {
		cr := &countingReader{r: newChunkReader(stream, seed, 1+int(seed)*300)}
		r := NewReader(cr, 0)
		for i := range payloads {
			fb := r.FrameBuffered()
			calls := cr.calls
			if _, err := r.ReadFrame(); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, i, err)
			}
			if read := cr.calls != calls; read == fb {
				t.Fatalf("seed %d frame %d: FrameBuffered = %v but ReadFrame read from the stream: %v", seed, i, fb, read)
			}
		}
	}
}

// allocBytes reports the average bytes allocated by f over runs calls.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// Memory follows the bytes received, not the length a header claims.
func TestReaderMemoryBoundedByReceivedBytes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		claim int
		got   int
		end   error
		limit uint64
	}{
		{"big claim, EOF", DefaultMaxPayload - 1, 10, io.EOF, 256 << 10},
		{"big claim, read error", DefaultMaxPayload - 1, 10, errBoom, 256 << 10},
		{"big claim, 100 KiB sent", DefaultMaxPayload - 1, 100 << 10, io.EOF, 512 << 10},
		{"small-path claim, EOF", maxBuffer, 10, io.EOF, 8 << 10},
		{"small-path claim, read error", maxBuffer - 100, 10, errBoom, 8 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := tutorialHeader(tt.claim) + textPayload(tt.got, 4)
			var err error
			per := allocBytes(10, func() {
				src := iotest.HalfReader(&scriptReader{t: t, steps: []step{{data: data}}, final: tt.end})
				_, err = NewReader(src, 0).ReadFrame()
			})
			if err == nil || !errors.Is(err, tt.end) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("ReadFrame error = %v", err)
			}
			t.Logf("claim %d, %d bytes sent: %d bytes allocated per frame", tt.claim, tt.got, per)
			if per >= tt.limit {
				t.Fatalf("allocated %d bytes for a frame claiming %d of which %d arrived; want < %d",
					per, tt.claim, tt.got, tt.limit)
			}
		})
	}
}

// runWithTimeout fails the test if f does not return within d (the goroutine
// is left behind; the test binary is failing anyway).
func runWithTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %v", d)
	}
}

func TestReaderNoProgress(t *testing.T) {
	for _, tt := range []struct {
		name   string
		prefix string
	}{
		{"before header", ""},
		{"inside header", "12"},
		{"inside small payload", tutorialHeader(100) + "abc"},
		{"inside big payload", tutorialHeader(maxBuffer+100) + "abc"},
		{"big payload, nothing buffered", tutorialHeader(maxBuffer + 100)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rest := tt.prefix
			calls := 0
			src := readerFunc(func(p []byte) (int, error) {
				calls++
				if calls > 10000 {
					// Stop a spinning Reader so a failing run still ends.
					return 0, errBoom
				}
				if rest != "" {
					n := copy(p, rest)
					rest = rest[n:]
					return n, nil
				}
				return 0, nil
			})
			runWithTimeout(t, 10*time.Second, func() {
				_, err := NewReader(src, 0).ReadFrame()
				if !errors.Is(err, io.ErrNoProgress) {
					t.Errorf("error = %v after %d reads, want io.ErrNoProgress", err, calls)
				}
			})
		})
	}
}

// A read error that arrives after a complete frame does not lose the frame:
// the frame comes first, then the error; and the Reader does not read again
// after the underlying reader has failed.
func TestReaderErrorAfterCompleteFrame(t *testing.T) {
	for _, n := range []int{0, 10, 1000, maxBuffer, maxBuffer + 1, 200000} {
		payload := textPayload(n, 5)
		frame := tutorialFrame(payload)
		for _, tt := range []struct {
			name  string
			steps []step
		}{
			{"with last bytes", []step{{data: frame, err: errBoom}}},
			{"separately", []step{{data: frame}, {err: errBoom}}},
			{"after next header bytes", []step{{data: frame + "1", err: errBoom}}},
		} {
			t.Run(fmt.Sprintf("%d/%s", n, tt.name), func(t *testing.T) {
				src := &scriptReader{t: t, steps: tt.steps, final: io.EOF}
				r := NewReader(src, 0)
				p, err := r.ReadFrame()
				if err != nil || string(p) != payload {
					t.Fatalf("ReadFrame = %d bytes, %v; want the frame", len(p), err)
				}
				for range 2 {
					_, err = r.ReadFrame()
					if !errors.Is(err, errBoom) {
						t.Fatalf("next ReadFrame error = %v, want one wrapping %v", err, errBoom)
					}
					var pe *ProtocolError
					if errors.As(err, &pe) {
						t.Fatalf("I/O error reported as a protocol error: %v", err)
					}
				}
			})
		}
	}
}

// Same with io.EOF delivered with the last bytes (iotest.DataErrReader):
// the frame, then a clean io.EOF.
func TestReaderEOFWithLastFrame(t *testing.T) {
	for _, n := range []int{0, 10, maxBuffer, maxBuffer + 1} {
		payload := textPayload(n, 6)
		src := &scriptReader{t: t, steps: []step{{data: tutorialFrame(payload), err: io.EOF}}}
		r := NewReader(src, 0)
		if p, err := r.ReadFrame(); err != nil || string(p) != payload {
			t.Fatalf("n=%d: ReadFrame = %d bytes, %v", n, len(p), err)
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("n=%d: then %v, want io.EOF", n, err)
		}
	}
}

// A read error inside a payload leaves the stream position unknown. Later
// calls must report an error, never parse the rest of the broken payload as
// frames (here the payload itself looks like frames, as a hostile or
// tunnelled message might).
func TestReaderErrorInsidePayloadDoesNotDesync(t *testing.T) {
	inner := strings.Repeat(tutorialFrame("forged"), 30)
	for _, n := range []int{len(inner), maxBuffer + len(inner)} {
		payload := inner + strings.Repeat(" ", n-len(inner))
		frame := tutorialFrame(payload)
		cut := HeaderSize + len(inner) - 5
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/split=%v", n, split), func(t *testing.T) {
				steps := []step{{data: frame[:cut], err: errBoom}}
				if split {
					steps = []step{{data: frame[:HeaderSize]}, {data: frame[HeaderSize:cut], err: errBoom}}
				}
				src := &scriptReader{t: t, steps: steps, final: io.EOF}
				r := NewReader(src, 0)
				_, err := r.ReadFrame()
				if !errors.Is(err, errBoom) {
					t.Fatalf("ReadFrame error = %v, want one wrapping %v", err, errBoom)
				}
				for range 3 {
					p, err := r.ReadFrame()
					if err == nil {
						t.Fatalf("after a read error inside a payload, ReadFrame returned frame %q", p)
					}
					if !errors.Is(err, errBoom) {
						t.Fatalf("later error = %v, want one wrapping %v", err, errBoom)
					}
				}
			})
		}
	}
}

// Other read errors are returned wrapped, whichever part of the frame they
// interrupt.
func TestReaderReadErrorWrapped(t *testing.T) {
	for _, prefix := range []string{"", "1", tutorialHeader(10), tutorialHeader(10) + "abc", tutorialHeader(maxBuffer + 10)} {
		src := &scriptReader{t: t, steps: []step{{data: prefix, err: errBoom}}}
		_, err := NewReader(src, 0).ReadFrame()
		if !errors.Is(err, errBoom) || !strings.HasPrefix(err.Error(), "transport: read ") {
			t.Errorf("prefix %q: error %v", prefix, err)
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			t.Errorf("prefix %q: I/O error reported as a protocol error", prefix)
		}
	}
}
