package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"

	"github.com/lanmsg/lanmsg/session"
)

// screenRows plays out on a terminal width columns wide what chat printed,
// as a terminal does: a newline starts a row, a character that does not fit
// on the row starts the next one (or, while the terminal's wrapping is off,
// is cut off and counted in clipped). It measures characters as a terminal
// in a Western locale does (runewidth's defaults), not as chat does. Any
// control character or escape sequence other than those turning the
// wrapping off and on fails the test: text can only drive a terminal
// through them.
func screenRows(t *testing.T, out []byte, width int) (rows []string, clipped int) {
	return screenRowsMeasured(t, out, width, runewidth.RuneWidth)
}

// screenRowsMeasured is screenRows on a terminal that measures characters
// with measure.
func screenRowsMeasured(t *testing.T, out []byte, width int, measure func(rune) int) (rows []string, clipped int) {
	t.Helper()
	s := string(out)
	var row strings.Builder
	col, wrap := 0, true
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "\x1b[?7l"):
			wrap, s = false, s[len("\x1b[?7l"):]
			continue
		case strings.HasPrefix(s, "\x1b[?7h"):
			wrap, s = true, s[len("\x1b[?7h"):]
			continue
		}
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		switch {
		case r == '\n':
			rows = append(rows, row.String())
			row.Reset()
			col = 0
			continue
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			t.Fatalf("the output carries the control character %U: %q", r, out)
		}
		w := measure(r)
		if col+w > width {
			if !wrap {
				clipped++
				continue
			}
			rows = append(rows, row.String())
			row.Reset()
			col = 0
		}
		row.WriteRune(r)
		col += w
	}
	if row.Len() > 0 {
		rows = append(rows, row.String())
	}
	return rows, clipped
}

// systemRow is how lanmsg's own lines start: the time and "*" (joins,
// leaves, who, notes) or "!" (the server's errors), or "*" alone (notes).
var systemRow = regexp.MustCompile(`^(\d\d:\d\d:\d\d )?[*!] `)

// TestChatTextCannotForgeSystemLines: whatever a message holds, on a
// terminal it shows as one line that starts with the time and its sender,
// continued on indented rows, so no part of it reads as a line of lanmsg's
// own; nothing of it is lost; and a line that fills the width exactly takes
// one row.
func TestChatTextCannotForgeSystemLines(t *testing.T) {
	const width = 60
	stamp := time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local)
	head := "12:00:00 [bob] "
	pad := func(n int) string { return strings.Repeat(" ", n) }
	fill := width - len(head) // the text that fills the first row exactly
	forged := "12:00:00 * alice left"
	cases := []struct {
		name, from, text string
		rows             int // how many rows it takes, 0 if not checked
	}{
		{"padded to the width", "bob", pad(fill) + forged, 2},
		{"padded to the width, no time", "bob", pad(fill) + "* alice left", 2},
		{"padded over two rows", "bob", pad(fill+width) + forged, 3},
		{"exactly the width", "bob", strings.Repeat("x", fill), 1},
		{"one past the width", "bob", strings.Repeat("x", fill+1), 2},
		{"newline", "bob", "hi\n" + forged, 1},
		{"carriage return", "bob", "hi\r" + forged, 1},
		{"CRLF", "bob", "hi\r\n" + forged, 1},
		{"tabs to the width", "bob", strings.Repeat("\t", 6) + forged, 2},
		{"tabs past the width", "bob", strings.Repeat("\t", 20) + forged, 0},
		{"ANSI erase line and return", "bob", "hi\x1b[2K\r" + forged, 1},
		{"ANSI cursor to column 1", "bob", "hi\x1b[1G" + forged, 1},
		{"ANSI next line", "bob", "hi\x1b[E" + forged, 1},
		{"ANSI wrap back on", "bob", "\x1b[?7h" + pad(fill) + forged, 0},
		{"C1 CSI", "bob", "hi\u009b1G" + forged, 1},
		{"C1 next line", "bob", "hi\u0085" + forged, 1},
		{"line separator", "bob", "hi\u2028" + forged, 1},
		{"right-to-left override", "bob", pad(fill-5) + "\u202etfel ecila * 00:00:21", 0},
		{"wide character across the edge", "bob", pad(fill-1) + "世" + forged, 2},
		{"wide characters to the edge", "bob", strings.Repeat("世", fill/2) + forged, 2},
		{"wide characters one column short", "bob", "x" + strings.Repeat("世", fill/2) + forged, 2},
		{"ambiguous width", "bob", strings.Repeat("…", fill) + forged, 0},
		{"emoji", "bob", strings.Repeat("🙂", fill/2) + forged, 2},
		{"combining marks", "bob", strings.Repeat("e\u0301", fill) + forged, 2},
		{"zero-width spaces", "bob", strings.Repeat("\u200b", 200) + pad(fill) + forged, 2},
		{"long text", "bob", strings.Repeat("lorem ipsum ", 40) + forged, 0},
		{"padded name", pad(width) + forged, "hi", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &chatPrinter{w: &out, width: func() int { return width }}
			p.event(session.Event{Type: session.EventMessage, Name: c.from, Text: c.text, Time: stamp})
			rows, clipped := screenRows(t, out.Bytes(), width)
			show := "\n" + strings.Join(rows, "|\n") + "|"
			if c.from == "bob" && !strings.HasPrefix(rows[0], head) {
				t.Errorf("the first row does not start with the time and the sender:%s", show)
			}
			for i, r := range rows {
				if systemRow.MatchString(r) {
					t.Errorf("row %d reads as a system line:%s", i, show)
				}
				if i > 0 && !strings.HasPrefix(r, pad(chatIndent)) {
					t.Errorf("row %d is not indented by %d:%s", i, chatIndent, show)
				}
				if w := runewidth.StringWidth(r); w > width {
					t.Errorf("row %d is %d columns wide, wider than the %d of the terminal:%s", i, w, width, show)
				}
			}
			if clipped > 0 {
				t.Errorf("%d characters were cut at the edge:%s", clipped, show)
			}
			if c.rows > 0 && len(rows) != c.rows {
				t.Errorf("%d rows, want %d:%s", len(rows), c.rows, show)
			}
			// Nothing is lost: the rows hold the escaped line (tabs as
			// blanks), and only indentation added.
			want := screenText(head[:9] + "[" + esc(c.from) + "] " + esc(c.text))
			if got, want := nonBlank(strings.Join(rows, "")), nonBlank(want); got != want {
				t.Errorf("the rows hold\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func nonBlank(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
}

// TestChatSystemLinesWrap: lanmsg's own lines wrap in the same way (a who
// list wider than the screen), and a terminal so narrow that the indent does
// not fit still gets a blank at column 0 of every continuation row.
func TestChatSystemLinesWrap(t *testing.T) {
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("person%d", i))
	}
	for _, width := range []int{80, 20, 3} {
		var out bytes.Buffer
		p := &chatPrinter{w: &out, width: func() int { return width }}
		p.event(session.Event{Type: session.EventWho, Names: names, Time: time.Now()})
		rows, _ := screenRows(t, out.Bytes(), max(width, 4))
		if len(rows) < 2 || !regexp.MustCompile(`^\d\d:\d\d:\d\d \* here: `).MatchString(rows[0]) && width > 10 {
			t.Errorf("width %d: want the who list over several rows, starting with the time:\n%s", width, strings.Join(rows, "\n"))
		}
		for i, r := range rows[1:] {
			if !strings.HasPrefix(r, " ") {
				t.Errorf("width %d: row %d is not indented:\n%s", width, i+1, strings.Join(rows, "\n"))
			}
		}
	}
}

// TestChatTerminalWiderThanMeasured: on a terminal that draws characters
// wider than chat measured them (here: zero-width spaces as one column, as
// some do), what does not fit is cut at the right edge; it never starts a
// row at column 0.
func TestChatTerminalWiderThanMeasured(t *testing.T) {
	const width = 60
	var out bytes.Buffer
	p := &chatPrinter{w: &out, width: func() int { return width }}
	p.event(session.Event{Type: session.EventMessage, Name: "bob", Text: strings.Repeat("\u200b", 45) + "* alice left", Time: time.Now()})
	rows, clipped := screenRowsMeasured(t, out.Bytes(), width, func(r rune) int {
		if r == '\u200b' {
			return 1
		}
		return runewidth.RuneWidth(r)
	})
	if len(rows) != 1 || clipped == 0 {
		t.Errorf("want one row, cut at the edge (%d cut):\n%s", clipped, strings.Join(rows, "\n"))
	}
}

// TestChatNotTerminalOneLine: output that is not a terminal gets one line
// per event, not wrapped, with the text escaped; --json is unchanged.
func TestChatNotTerminalOneLine(t *testing.T) {
	text := strings.Repeat(" ", 100) + "hi\n12:00:00 * alice left"
	var out bytes.Buffer
	p := &chatPrinter{w: &out}
	p.event(session.Event{Type: session.EventMessage, Name: "bob", Text: text, Time: time.Now()})
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "[bob] "+strings.Repeat(" ", 100)+`hi\n12:00:00 * alice left`+"\n") {
		t.Errorf("got %q", got)
	}
	out.Reset()
	p = &chatPrinter{w: &out, json: true}
	p.event(session.Event{Type: session.EventMessage, Name: "bob", Text: text, Time: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)})
	if want := `{"t":"msg","name":"bob","text":"` + strings.Repeat(" ", 100) + `hi\n12:00:00 * alice left","time":"2026-12-02T12:00:00Z"}` + "\n"; out.String() != want {
		t.Errorf("--json prints\n%s\nwant\n%s", out.String(), want)
	}
}

// TestTerminalWidthFallback: where the terminal does not tell its width,
// chat assumes 80 columns.
func TestTerminalWidthFallback(t *testing.T) {
	if w := terminalWidth(-1)(); w != 80 {
		t.Errorf("width %d, want 80", w)
	}
}
