package main

import (
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
	"golang.org/x/term"
)

// How chat shows its lines on a terminal, so that no one's text can pass for
// a line of lanmsg's own (a join, a leave, who is here):
//
//   - Every line chat prints starts at column 0 with what lanmsg writes there:
//     the time, then "[NAME]" for a message, "*" for lanmsg's own lines, "!"
//     for the server's errors; notes (the answer to /help) start with "*".
//   - chat wraps long lines itself, to the terminal's width, and indents
//     every continuation row by chatIndent blanks. So text someone sent never
//     starts a row: padding a message to the width of the screen only moves
//     its rest to an indented row.
//   - While it prints, chat turns the terminal's own wrapping off (DECAWM),
//     so that a character the terminal draws wider than chat measured is
//     cut at the right edge instead of starting a row at column 0. Widths are
//     measured generously: East Asian ambiguous characters count as two
//     columns, tabs as the blanks that reach the next tab stop.
//   - Text is escaped as everywhere else (control characters as \n, \r,
//     \xNN), and, on screen, bidirectional controls and line or paragraph
//     separators too, as \uNNNN: they could move text around on the row.
//
// Output that is not a terminal is not wrapped: one line per event, in which
// no text can start a line because newlines in it are escaped.

// chatIndent is how far chat indents the continuation rows of a long line:
// past the time at the start of every line.
const chatIndent = len("15:04:05 ") + 2

// chatDefaultWidth is the width chat assumes when the terminal does not say.
const chatDefaultWidth = 80

// chatWidthCond measures the width of characters generously (see above).
var chatWidthCond = &runewidth.Condition{EastAsianWidth: true}

// terminalWidth returns a function that tells the width of the terminal fd
// is, now (it may be resized), or chatDefaultWidth when it cannot tell.
func terminalWidth(fd int) func() int {
	return func() int {
		w, _, err := term.GetSize(fd)
		if err != nil || w <= 0 {
			return chatDefaultWidth
		}
		return w
	}
}

// Where the terminal's own wrapping is turned off and on again. Windows
// consoles without VT processing would print these, so chat relies on its
// own wrapping alone there.
var decawmOff, decawmOn = "\x1b[?7l", "\x1b[?7h"

func init() {
	if runtime.GOOS == "windows" {
		decawmOff, decawmOn = "", ""
	}
}

// screenText escapes what, beyond esc, could move text on a terminal row:
// bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE...) and the line and
// paragraph separators, as \uNNNN. s is already escaped by esc.
func screenText(s string) string {
	clean := true
	for _, r := range s {
		if moves(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if moves(r) {
			const hex = "0123456789abcdef"
			b.WriteString(`\u`)
			for shift := 12; shift >= 0; shift -= 4 {
				b.WriteByte(hex[(r>>shift)&0xf])
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func moves(r rune) bool {
	return r >= utf8.RuneSelf && (unicode.Is(unicode.Bidi_Control, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r))
}

// appendRows appends line laid out in rows for a terminal width columns
// wide, each ended by a newline: the first starts at column 0, the others
// are indented. line holds no control characters but tabs (it is escaped).
// A line that fills the width exactly takes one row.
func appendRows(dst []byte, line string, width int) []byte {
	indent := chatIndent
	if width < 4*chatIndent {
		indent = 2 // a very narrow terminal: still a blank at column 0
	}
	if width < indent+2 {
		width = indent + 2 // room for one wide character; the rest is cut
	}
	dst = append(dst, decawmOff...)
	col := 0
	newRow := func() {
		dst = append(dst, '\n')
		for range indent {
			dst = append(dst, ' ')
		}
		col = indent
	}
	for _, r := range line {
		if r == '\t' {
			n := 8 - col%8
			if col+n > width {
				newRow()
				n = min(8-col%8, width-col)
			}
			for range n {
				dst = append(dst, ' ')
			}
			col += n
			continue
		}
		w := chatWidthCond.RuneWidth(r)
		if col+w > width {
			newRow()
		}
		dst = utf8.AppendRune(dst, r)
		col += w
	}
	dst = append(dst, decawmOn...)
	return append(dst, '\n')
}
