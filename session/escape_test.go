package session

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// refEscape is appendEscaped written plainly, one rune at a time: the
// reference for the fast path that skips eight clean bytes at once.
func refEscape(text []byte) []byte {
	var b []byte
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		c := text[0]
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\uFFFD"...)
		case r >= 0x80 && r < 0xa0:
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, text[:size]...)
		}
		text = text[size:]
	}
	return b
}

func TestEscapeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abcXYZ019 ~!\\\n\r\t\x00\x1f\x7f\x80\xff\xc3\xa9\xe2\x9c\x93\xc2\x9b\xc2\x9d\xc2\x85")
	for i := range 200000 {
		n := rng.IntN(40)
		text := make([]byte, n)
		for j := range text {
			if rng.IntN(4) == 0 {
				text[j] = byte(rng.IntN(256)) // any byte
			} else if rng.IntN(3) == 0 {
				text[j] = alphabet[rng.IntN(len(alphabet))]
			} else {
				text[j] = byte(0x20 + rng.IntN(0x5f)) // printable ASCII
			}
		}
		got, want := appendEscaped(nil, text), refEscape(text)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: escape(%q) = %q, want %q", i, text, got, want)
		}
	}
}

// FuzzEscape checks the escaping against the reference, and that its output
// is one line of valid UTF-8.
func FuzzEscape(f *testing.F) {
	f.Add([]byte("hello, world"))
	f.Add([]byte("two\nlines\\ and a \x1b[31m colour"))
	f.Add([]byte("\xff\xfe caf\xc3\xa9 \xe2\x9c\x93 0123456789abcdef"))
	f.Fuzz(func(t *testing.T, text []byte) {
		got := appendEscaped(nil, text)
		if want := refEscape(text); !bytes.Equal(got, want) {
			t.Fatalf("escape(%q) = %q, want %q", text, got, want)
		}
		if bytes.ContainsAny(got, "\n\r") || !utf8.Valid(got) {
			t.Fatalf("escape(%q) = %q: not one line of UTF-8", text, got)
		}
	})
}

// TestEscapeEveryByteEverywhere: each of the 256 byte values, at each
// position of a clean text long enough for every path of the scan (blocks of
// 64 and 16 bytes, words of 8, single bytes), is escaped as the reference
// escapes it. The clean-text scan is assembly on amd64 and Go elsewhere
// (-tags purego runs the Go on amd64 too).
func TestEscapeEveryByteEverywhere(t *testing.T) {
	clean := make([]byte, 150)
	for i := range clean {
		clean[i] = ' ' + byte(i%0x5f)
		if clean[i] == '\\' {
			clean[i] = 'x'
		}
	}
	for pos := range clean {
		for v := range 256 {
			text := bytes.Clone(clean)
			text[pos] = byte(v)
			if got, want := appendEscaped(nil, text), refEscape(text); !bytes.Equal(got, want) {
				t.Fatalf("byte %#x at %d of %d: escape = %q, want %q", v, pos, len(text), got, want)
			}
		}
	}
	if got := appendEscaped(nil, clean); !bytes.Equal(got, clean) {
		t.Fatalf("clean text changed: %q", got)
	}
}
