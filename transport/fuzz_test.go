package transport

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// refParseHeader is the specification of ParseHeader written the obvious
// way: 64 bytes; with the surrounding spaces trimmed, a non-empty run of ASCII
// digits; a value no larger than maxParsed.
func refParseHeader(h []byte) (int, bool) {
	if len(h) != HeaderSize {
		return 0, false
	}
	s := strings.Trim(string(h), " ")
	if s == "" {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > maxParsed {
		return 0, false
	}
	return int(v), true
}

// refDecode decodes a whole stream the obvious way and says how it ends:
// nil for a clean end, else the sentinel a Reader must report.
func refDecode(data []byte, max int) ([]string, error) {
	var frames []string
	for {
		if len(data) == 0 {
			return frames, nil
		}
		if len(data) < HeaderSize {
			return frames, ErrTruncated
		}
		n, ok := refParseHeader(data[:HeaderSize])
		if !ok {
			return frames, ErrBadHeader
		}
		if n > max {
			return frames, ErrFrameTooLarge
		}
		if len(data)-HeaderSize < n {
			return frames, ErrTruncated
		}
		frames = append(frames, string(data[HeaderSize:HeaderSize+n]))
		data = data[HeaderSize+n:]
	}
}

func addStreamSeeds(f *testing.F) {
	tutorial := tutorialFrame("Hello World!") + tutorialFrame("Hello Everyone!") + tutorialFrame(Disconnect)
	for i, s := range []string{
		"",
		"2" + strings.Repeat(" ", 63) + "Hi",
		tutorial,
		tutorial[:70],
		tutorial[:10],
		tutorialFrame("") + tutorialFrame("héllo ✓"),
		pad("1 2") + "ab",
		pad("-1"),
		pad("+1") + "a",
		pad("5\x00") + "abcde",
		"5" + strings.Repeat("\x00", 63) + "abcde",
		"\t5" + strings.Repeat(" ", 62) + "abcde",
		strings.Repeat("9", 64),
		strings.Repeat(" ", 64),
		strings.Repeat(" ", 62) + "03abc",
		strings.Repeat("0", 64) + tutorialFrame("x"),
		tutorialHeader(100) + strings.Repeat("a", 100),
		tutorialHeader(101) + strings.Repeat("a", 101),
	} {
		f.Add([]byte(s), uint64(i))
	}
}

// FuzzReadFrame feeds arbitrary bytes, split arbitrarily, to a Reader with a
// small maximum and checks it against refDecode.
func FuzzReadFrame(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		const max = 100
		var src io.Reader = newChunkReader(data, seed, 1+int(seed%97))
		if seed&(1<<20) != 0 {
			src = iotest.DataErrReader(src)
		}
		r := NewReader(src, max)
		wantFrames, wantErr := refDecode(data, max)
		var got []string
		var err error
		for {
			var p []byte
			p, err = r.ReadFrame()
			if err != nil {
				if p != nil {
					t.Fatalf("payload returned with error %v", err)
				}
				break
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes, max %d", len(p), max)
			}
			got = append(got, string(p))
			if len(got) > len(data) {
				t.Fatalf("more frames than input bytes")
			}
		}
		if len(got) != len(wantFrames) {
			t.Fatalf("read %d frames, reference %d (err %v, reference %v)", len(got), len(wantFrames), err, wantErr)
		}
		for i := range got {
			if got[i] != wantFrames[i] {
				t.Fatalf("frame %d = %q, reference %q", i, got[i], wantFrames[i])
			}
		}
		if wantErr == nil {
			if err != io.EOF {
				t.Fatalf("error %v, want io.EOF", err)
			}
		} else {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Err != wantErr {
				t.Fatalf("error %v (%T), want a *ProtocolError for %v", err, err, wantErr)
			}
			if pe.Err == ErrTruncated && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncation %v does not match io.ErrUnexpectedEOF", err)
			}
			if pe.Err == ErrBadHeader || pe.Err == ErrFrameTooLarge {
				if len(pe.Header) != HeaderSize {
					t.Fatalf("%v keeps a header of %d bytes", err, len(pe.Header))
				}
			}
		}
		// Whatever the end, it is repeated.
		if _, err2 := r.ReadFrame(); err2 != err {
			t.Fatalf("second call: %v, first %v", err2, err)
		}
	})
}

// fuzzPayloads turns fuzz bytes into payloads: 0x00 separates them, and a
// payload starting with 0x01 is inflated to around maxBuffer bytes (just
// below, at, or above it) so that both read paths are exercised.
func fuzzPayloads(data []byte) [][]byte {
	var out [][]byte
	bigs := 0
	for _, seg := range bytes.Split(data, []byte{0}) {
		if len(seg) > 0 && seg[0] == 1 && bigs < 3 {
			bigs++
			size := maxBuffer - 64 + int(seg[len(seg)-1])%200
			seg = bytes.Repeat(seg, size/len(seg)+1)[:size]
		}
		out = append(out, seg)
	}
	return out
}

// FuzzRoundTrip encodes payloads with AppendFrame and checks that a Reader
// fed through random splits returns them unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("Hello World!\x00Hello Everyone!\x00!DISCONNECT"), uint64(1), uint16(10))
	f.Add([]byte("\x00\x00Hi\x00"), uint64(2), uint16(1))
	f.Add([]byte("héllo ✓\x00\x01big\x00tail"), uint64(3), uint16(1000))
	f.Add([]byte("\x01a\xff\x00\x01b\x40\x00x"), uint64(4), uint16(65535))
	f.Add([]byte("1                                                               x"), uint64(5), uint16(64))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, chunk uint16) {
		payloads := fuzzPayloads(data)
		var stream []byte
		for _, p := range payloads {
			stream = AppendFrame(stream, p)
		}
		var src io.Reader = newChunkReader(stream, seed, 1+int(chunk))
		if seed&1 != 0 {
			src = iotest.DataErrReader(src)
		}
		r := NewReader(src, 0)
		for i, want := range payloads {
			got, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("frame %d of %d: %v", i, len(payloads), err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
			}
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("after %d frames: %v, want io.EOF", len(payloads), err)
		}
	})
}

// FuzzParseHeader checks ParseHeader against refParseHeader and AppendHeader.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		tutorialHeader(2), tutorialHeader(0), tutorialHeader(11), tutorialHeader(DefaultMaxPayload),
		tutorialHeader(maxParsed), pad(strconv.Itoa(maxParsed + 1)), strings.Repeat("9", 64),
		strings.Repeat("0", 64), strings.Repeat(" ", 64), strings.Repeat(" ", 62) + "42",
		pad("1 2"), pad("-1"), pad("+1"), pad("5\x00"), pad("5\t"), pad("5\n"), pad("x"),
		"", "5", pad("5") + " ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		in := append([]byte(nil), h...)
		n, err := ParseHeader(h)
		if !bytes.Equal(h, in) {
			t.Fatalf("ParseHeader modified its input")
		}
		want, ok := refParseHeader(h)
		if ok != (err == nil) || n != want {
			t.Fatalf("ParseHeader(%q) = %d, %v; reference %d, ok=%v", h, n, err, want, ok)
		}
		if err != nil {
			pe := wantProtocolError(t, err, ErrBadHeader)
			if !bytes.Equal(pe.Header, h) {
				t.Fatalf("Header = %q, want %q", pe.Header, h)
			}
			_ = err.Error()
			return
		}
		enc := AppendHeader(nil, n)
		if len(enc) != HeaderSize {
			t.Fatalf("AppendHeader(%d) is %d bytes", n, len(enc))
		}
		if back, err := ParseHeader(enc); err != nil || back != n {
			t.Fatalf("ParseHeader(AppendHeader(%d)) = %d, %v", n, back, err)
		}
		if string(enc) != tutorialHeader(n) {
			t.Fatalf("AppendHeader(%d) = %q, want %q", n, enc, tutorialHeader(n))
		}
	})
}
