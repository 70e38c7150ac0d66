package session

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFormatTextAppend(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello world", "hello world"},
		{"empty", "", ""},
		{"newline", "a\nb", `a\nb`},
		{"backslash", `a\b`, `a\\b`},
		{"backslash n is not a newline", `a\nb`, `a\\nb`},
		{"carriage return", "a\r\nb", `a\r\nb`},
		{"tab kept", "a\tb", "a\tb"},
		{"NUL", "a\x00b", `a\x00b`},
		{"escape", "\x1b[31mred", `\x1b[31mred`},
		{"control 0x1f", "\x1f", `\x1f`},
		{"DEL", "\x7f", `\x7f`},
		{"quotes kept", `say "hi" 'there'`, `say "hi" 'there'`},
		{"non-ASCII kept", "héllo wörld ✓ 日本 😀", "héllo wörld ✓ 日本 😀"},
		{"U+FFFD kept", "a\uFFFDb", "a\uFFFDb"},
		{"invalid byte", "a\xffb", "a\uFFFDb"},
		{"lone continuation", "\x80", "\uFFFD"},
		{"truncated sequence", "x\xe2\x82", "x\uFFFD\uFFFD"},
		{"overlong encoding", "\xc0\xaf", "\uFFFD\uFFFD"},
		{"surrogate half", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"C1 control (NEL) escaped", "\u0085", `\u0085`},
		{"C1 CSI escaped", "a\u009b2Jb", `a\u009b2Jb`},
		{"all at once", "\\\n\r\t\x01\xfe✓", `\\\n\r` + "\t" + `\x01` + "\uFFFD✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Peer: "127.0.0.1:5050", Text: []byte(tt.in)}
			got := string(Text.Append(nil, m))
			want := "[127.0.0.1:5050] : " + tt.want + "\n"
			if got != want {
				t.Errorf("Append(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

func TestFormatAppendKeepsDst(t *testing.T) {
	m := &Message{Time: time.Unix(0, 0), Peer: "p:1", Text: []byte("x")}
	for _, f := range []Format{Text, JSON} {
		dst := []byte("prefix|")
		got := string(f.Append(dst, m))
		if !strings.HasPrefix(got, "prefix|") || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
			t.Errorf("%v: Append to a non-empty dst gave %q", f, got)
		}
	}
}

type jsonLine struct {
	Time    string  `json:"time"`
	Session *uint64 `json:"session"`
	Peer    *string `json:"peer"`
	Text    *string `json:"text"`
}

func decodeJSONLine(t *testing.T, line []byte) jsonLine {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("line %q is not JSON: %v", line, err)
	}
	for _, k := range []string{"time", "session", "peer", "text"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("line %q has no %q field", line, k)
		}
	}
	if len(raw) != 4 {
		t.Errorf("line %q has %d fields, want 4", line, len(raw))
	}
	var l jsonLine
	if err := json.Unmarshal(line, &l); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return l
}

func TestFormatJSONAppend(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 2*3600))
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"empty", "", ""},
		{"quotes", `say "hi"`, `say "hi"`},
		{"backslash", `C:\dir\`, `C:\dir\`},
		{"newlines", "line1\nline2\r\n", "line1\nline2\r\n"},
		{"tab", "a\tb", "a\tb"},
		{"controls", "\x00\x01\x1b\x1f", "\x00\x01\x1b\x1f"},
		{"DEL", "\x7f", "\x7f"},
		{"html", "<a href='x'>&</a>", "<a href='x'>&</a>"},
		{"non-ASCII", "héllo ✓ 日本 😀", "héllo ✓ 日本 😀"},
		{"line separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"invalid byte", "a\xffb", "a\uFFFDb"},
		{"truncated sequence", "\xe2\x82", "\uFFFD\uFFFD"},
		{"U+FFFD kept", "\uFFFD", "\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Time: when, Session: 42, Peer: `127.0.0.1:5050`, Text: []byte(tt.in)}
			line := JSON.Append(nil, m)
			if n := strings.Count(string(line), "\n"); n != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("line %q: want exactly one newline, at the end", line)
			}
			l := decodeJSONLine(t, line)
			if l.Time != "2024-01-02T01:04:05.000000006Z" {
				t.Errorf("time = %q, want UTC RFC 3339 with nanoseconds", l.Time)
			}
			if *l.Session != 42 || *l.Peer != "127.0.0.1:5050" {
				t.Errorf("session, peer = %d, %q", *l.Session, *l.Peer)
			}
			if *l.Text != tt.want {
				t.Errorf("text = %q, want %q (line %q)", *l.Text, tt.want, line)
			}
		})
	}
}

// TestFormatRandomBytes checks every format on random byte strings: one line
// each, valid UTF-8, and JSON text equal to the input with each invalid byte
// replaced by U+FFFD (what a Go range loop over the string yields).
func TestFormatRandomBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := make([][]byte, 0, 2000)
	for b := range 256 {
		inputs = append(inputs, []byte{byte(b)})
	}
	alphabet := []byte("ab\\\"\n\r\t\x00\x1f\x7f\x80\xbf\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xff")
	for range 2000 {
		p := make([]byte, r.IntN(20))
		for i := range p {
			if r.IntN(3) == 0 {
				p[i] = byte(r.IntN(256))
			} else {
				p[i] = alphabet[r.IntN(len(alphabet))]
			}
		}
		inputs = append(inputs, p)
	}
	for _, in := range inputs {
		m := &Message{Time: time.Unix(1, 0), Session: 1, Peer: "h:1", Text: in}
		txt := Text.Append(nil, m)
		if !utf8.Valid(txt) || strings.Count(string(txt), "\n") != 1 || txt[len(txt)-1] != '\n' {
			t.Fatalf("text line for %q is %q: want valid UTF-8, one trailing newline", in, txt)
		}
		for _, c := range txt[:len(txt)-1] {
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Fatalf("text line for %q contains control byte %#x: %q", in, c, txt)
			}
		}
		js := JSON.Append(nil, m)
		if !utf8.Valid(js) {
			t.Fatalf("JSON line for %q is not UTF-8: %q", in, js)
		}
		l := decodeJSONLine(t, js)
		if want := string([]rune(string(in))); *l.Text != want {
			t.Fatalf("JSON text for %q = %q, want %q", in, *l.Text, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Format
	}{{"text", Text}, {"json", JSON}} {
		got, err := ParseFormat(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFormat(%q) = %v, %v", tt.in, got, err)
		}
		if got.String() != tt.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, in := range []string{"", "TEXT", "xml", "json "} {
		if _, err := ParseFormat(in); err == nil {
			t.Errorf("ParseFormat(%q) succeeded", in)
		}
	}
}

// BenchmarkAppendEscaped: the text format's escaping of a clean 4 KiB
// message, the server's main CPU cost at 4 KiB after the system calls.
func BenchmarkAppendEscaped(b *testing.B) {
	text := make([]byte, 4096)
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	dst := make([]byte, 0, 8192)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		dst = appendEscaped(dst[:0], text)
	}
}
