package transport

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseHeaderValid(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"tutorial 2", "2" + strings.Repeat(" ", 63), 2},
		{"tutorial helper", tutorialHeader(11), 11},
		{"zero", pad("0"), 0},
		{"all zeros", strings.Repeat("0", 64), 0},
		{"leading spaces", strings.Repeat(" ", 10) + pad("42")[:54], 42},
		{"right aligned", strings.Repeat(" ", 62) + "42", 42},
		{"leading and trailing spaces", "   7" + strings.Repeat(" ", 60), 7},
		{"leading zeros", pad("00012"), 12},
		{"63 zeros then 9", strings.Repeat("0", 63) + "9", 9},
		{"64 digits with leading zeros", strings.Repeat("0", 51) + strconv.Itoa(maxParsed), maxParsed},
		{"default max", pad(strconv.Itoa(DefaultMaxPayload)), DefaultMaxPayload},
		{"payload limit", pad(strconv.Itoa(MaxPayloadLimit)), MaxPayloadLimit},
		{"max parsed", pad(strconv.Itoa(maxParsed)), maxParsed},
		{"12 nines", pad("999999999999"), 999999999999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.header) != HeaderSize {
				t.Fatalf("bad test: header is %d bytes", len(tt.header))
			}
			got, err := ParseHeader([]byte(tt.header))
			if err != nil {
				t.Fatalf("ParseHeader(%q) error: %v", tt.header, err)
			}
			if got != tt.want {
				t.Fatalf("ParseHeader(%q) = %d, want %d", tt.header, got, tt.want)
			}
		})
	}
}

func TestParseHeaderInvalid(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"empty slice", ""},
		{"all spaces", strings.Repeat(" ", 64)},
		{"all NULs", strings.Repeat("\x00", 64)},
		{"letters", pad("abc")},
		{"hex", pad("0x10")},
		{"digit then letter", pad("12a")},
		{"letter then digit", pad("a12")},
		{"plus", pad("+5")},
		{"minus", pad("-5")},
		{"minus zero", pad("-0")},
		{"NUL first", "\x00" + pad("5")[:63]},
		{"NUL after digits", pad("5\x00")},
		{"NUL padding", "5" + strings.Repeat("\x00", 63)},
		{"NUL last", pad("5")[:63] + "\x00"},
		{"NUL before digits", " \x005" + strings.Repeat(" ", 61)},
		{"tab before", "\t5" + strings.Repeat(" ", 62)},
		{"tab after", pad("5\t")},
		{"newline after", pad("5\n")},
		{"CR LF after", pad("5\r\n")},
		{"newline last", pad("5")[:63] + "\n"},
		{"space inside", pad("1 2")},
		{"space inside, leading spaces", pad("  1 2")},
		{"decimal point", pad("1.5")},
		{"exponent", pad("1e3")},
		{"underscore", pad("1_000")},
		{"non-ASCII digit", pad("١٢")}, // Arabic-Indic digits
		{"fullwidth digit", pad("２")},
		{"high byte", pad("5\xff")},
		{"64 nines", strings.Repeat("9", 64)},
		{"20 digits", pad("18446744073709551616")},
		{"max parsed plus one", pad(strconv.Itoa(maxParsed + 1))},
		{"max int64", pad("9223372036854775807")},
		{"63 bytes", pad("5")[:63]},
		{"65 bytes", pad("5") + " "},
		{"2 bytes", "5 "},
		{"128 bytes", pad("5") + strings.Repeat(" ", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []byte(tt.header)
			n, err := ParseHeader(h)
			if err == nil {
				t.Fatalf("ParseHeader(%q) = %d, nil; want an error", tt.header, n)
			}
			if n != 0 {
				t.Errorf("ParseHeader(%q) returned %d with its error, want 0", tt.header, n)
			}
			pe := wantProtocolError(t, err, ErrBadHeader)
			if !bytes.Equal(pe.Header, h) {
				t.Errorf("ProtocolError.Header = %q, want %q", pe.Header, h)
			}
			if len(h) > 0 && &pe.Header[0] == &h[0] {
				t.Errorf("ProtocolError.Header aliases the input; want a copy")
			}
			if pe.Detail == "" {
				t.Errorf("ProtocolError.Detail is empty")
			}
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrTruncated) {
				t.Errorf("error %v also matches another sentinel", err)
			}
			if !strings.HasPrefix(err.Error(), "transport: malformed length header") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// The header a ProtocolError keeps is a copy: the Reader reuses its buffer.
func TestParseHeaderErrorKeepsCopy(t *testing.T) {
	h := []byte(pad("x"))
	_, err := ParseHeader(h)
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ProtocolError", err)
	}
	h[0] = 'y'
	if pe.Header[0] != 'x' {
		t.Fatalf("ProtocolError.Header changed with the input buffer")
	}
}

func TestParseHeaderNoAllocs(t *testing.T) {
	h := []byte(tutorialHeader(12345))
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := ParseHeader(h); n != 12345 || err != nil {
			t.Fatalf("ParseHeader = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseHeader allocates %v times per call, want 0", allocs)
	}
}

func TestProtocolErrorMessage(t *testing.T) {
	_, err := ParseHeader([]byte(pad("5\x00")))
	msg := err.Error()
	// The NUL must be visible and the padding summarised, not printed.
	if !strings.Contains(msg, `"5\x00"+62 spaces`) {
		t.Errorf("Error() = %q, want the header quoted with its padding counted", msg)
	}
	tl := &ProtocolError{Err: ErrFrameTooLarge, Header: []byte(pad("2000")), Length: 2000, Max: 1000}
	if got, want := tl.Error(), "transport: frame too large: 2000 bytes claimed, limit is 1000"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAppendHeaderMatchesTutorial(t *testing.T) {
	for _, n := range []int{0, 1, 2, 9, 10, 11, 99, 100, 4096, 65535, 65536, 65537,
		DefaultMaxPayload - 1, DefaultMaxPayload, MaxPayloadLimit, maxParsed} {
		got := AppendHeader(nil, n)
		if want := tutorialHeader(n); string(got) != want {
			t.Errorf("AppendHeader(nil, %d) = %q, want %q", n, got, want)
		}
		if len(got) != HeaderSize {
			t.Errorf("AppendHeader(nil, %d) is %d bytes", n, len(got))
		}
		if back, err := ParseHeader(got); err != nil || back != n {
			t.Errorf("ParseHeader(AppendHeader(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestAppendHeaderAppends(t *testing.T) {
	prefix := []byte("prefix")
	got := AppendHeader(prefix, 5)
	if want := "prefix" + tutorialHeader(5); string(got) != want {
		t.Fatalf("AppendHeader(prefix, 5) = %q, want %q", got, want)
	}
	// Appending into spare capacity must not touch bytes outside the header.
	buf := make([]byte, 3, 3+HeaderSize+10)
	copy(buf, "abc")
	full := buf[:cap(buf)]
	for i := 3; i < len(full); i++ {
		full[i] = '#'
	}
	got = AppendHeader(buf, 123)
	if string(got) != "abc"+tutorialHeader(123) {
		t.Fatalf("AppendHeader = %q", got)
	}
	if string(full[3+HeaderSize:]) != strings.Repeat("#", 10) {
		t.Fatalf("AppendHeader wrote past the header: %q", full[3+HeaderSize:])
	}
}

func TestAppendFrameExactBytes(t *testing.T) {
	// The doc example, spelled out byte by byte.
	hi := AppendFrame(nil, []byte("Hi"))
	if len(hi) != 66 {
		t.Fatalf("frame for Hi is %d bytes, want 66", len(hi))
	}
	if hi[0] != 0x32 {
		t.Errorf("byte 0 = %#x, want 0x32", hi[0])
	}
	for i := 1; i < 64; i++ {
		if hi[i] != 0x20 {
			t.Errorf("byte %d = %#x, want 0x20", i, hi[i])
		}
	}
	if hi[64] != 0x48 || hi[65] != 0x69 {
		t.Errorf("payload bytes = %#x %#x, want 0x48 0x69", hi[64], hi[65])
	}
	if want := "2" + strings.Repeat(" ", 63) + "Hi"; string(hi) != want {
		t.Errorf("AppendFrame(Hi) = %q, want %q", hi, want)
	}

	for _, msg := range []string{"", "Hello World!", Disconnect, "héllo wörld ✓ 🎉",
		strings.Repeat("x", 10), strings.Repeat("y", 4096)} {
		got := AppendFrame(nil, []byte(msg))
		if want := tutorialFrame(msg); string(got) != want {
			t.Errorf("AppendFrame(%.20q) = %.80q, want %.80q", msg, got, want)
		}
	}
	// Length counts bytes, not runes, as Python's len() of the encoded bytes.
	got := AppendFrame(nil, []byte("é"))
	if string(got[:HeaderSize]) != pad("2") {
		t.Errorf("header for é = %q, want length 2", got[:HeaderSize])
	}

	// Appending to existing frames concatenates them.
	two := AppendFrame(AppendFrame(nil, []byte("a")), []byte("bc"))
	if want := tutorialFrame("a") + tutorialFrame("bc"); string(two) != want {
		t.Errorf("two frames = %q, want %q", two, want)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Idle: "idle", InHeader: "header", InPayload: "payload", 7: "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}
