package main

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mattn/go-colorable"
	"golang.org/x/term"

	"github.com/lanmsg/lanmsg/session"
)

// chatCommands are the commands chat knows, for /help and Tab.
var chatCommands = []string{"/help", "/history", "/join", "/msg", "/quit", "/rooms", "/who"}

// lineEditor reads what the person types in chat, on a terminal, through
// x/term's Terminal: a prompt, the line being typed, history (up and down
// arrows) and Tab completion of commands and of the names in the room.
// Everything else chat prints goes through it too, and appears above the
// line being typed, which is then drawn again: an incoming message never
// lands in the middle of it.
type lineEditor struct {
	t       *term.Terminal
	out     *os.File
	fd      int
	restore *term.State
	max     int
	lines   chan editedLine
	quit    chan struct{}
}

type editedLine struct {
	s   string
	err error
}

// newLineEditor puts the terminal (in for the keyboard, out for the screen)
// in raw mode and starts reading lines from it. names lists who is in the
// room, for completion. close restores the terminal.
func newLineEditor(in, out *os.File, max int, names func() []string) (*lineEditor, error) {
	fd := int(in.Fd())
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, colorable.NewColorable(out)}, "> ") // on Windows consoles, translates the cursor moves
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		return complete(line, pos, names())
	}
	e := &lineEditor{t: t, out: out, fd: fd, restore: st, max: max, lines: make(chan editedLine), quit: make(chan struct{})}
	go e.read()
	return e, nil
}

// read hands the lines typed to next. A read from the terminal cannot be
// interrupted, so it happens here, aside.
func (e *lineEditor) read() {
	for {
		s, err := e.t.ReadLine()
		if errors.Is(err, term.ErrPasteIndicator) {
			err = nil // a pasted line is a line like any other
		}
		select {
		case e.lines <- editedLine{s, err}:
		case <-e.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// Write prints p above the line being typed.
func (e *lineEditor) Write(p []byte) (int, error) { return e.t.Write(p) }

// Next returns the next line typed; io.EOF for Ctrl-D on an empty line, or
// Ctrl-C (in raw mode, a key like any other: chat's normal way out);
// session.ErrTooLong for a line over the maximum; ctx's error if ctx ends
// first.
func (e *lineEditor) Next(ctx context.Context) ([]byte, error) {
	select {
	case l := <-e.lines:
		if l.err != nil {
			return nil, l.err
		}
		if len(l.s) > e.max {
			return nil, session.ErrTooLong
		}
		return []byte(l.s), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Drained: a person types one line at a time; each is sent at once.
func (e *lineEditor) Drained() bool { return true }

// Stop restores the terminal and leaves the cursor on a fresh line.
func (e *lineEditor) Stop() {
	select {
	case <-e.quit:
		return
	default:
	}
	close(e.quit)
	_ = term.Restore(e.fd, e.restore)
	_, _ = io.WriteString(e.out, "\n")
}

// complete is Tab: it completes the word before pos, a command at the start
// of the line, otherwise a name in the room, as far as the candidates agree.
// Names that a terminal would not show as they are (control characters) are
// never put in the line.
func complete(line string, pos int, names []string) (string, int, bool) {
	head := line[:pos]
	start := strings.LastIndexByte(head, ' ') + 1
	word := head[start:]
	var cands []string
	switch {
	case start == 0 && strings.HasPrefix(word, "/"):
		for _, c := range chatCommands {
			if strings.HasPrefix(c, word) {
				cands = append(cands, c)
			}
		}
	case word != "":
		for _, n := range names {
			if strings.HasPrefix(strings.ToLower(n), strings.ToLower(word)) && esc(n) == n && !slices.Contains(cands, n) {
				cands = append(cands, n)
			}
		}
	}
	if len(cands) == 0 {
		return "", 0, false
	}
	common := cands[0]
	for _, c := range cands[1:] {
		common = commonPrefix(common, c)
	}
	if len(common) < len(word) || (len(cands) > 1 && strings.EqualFold(common, word)) {
		return "", 0, false // nothing to add
	}
	return head[:start] + common + line[pos:], start + len(common), true
}

// commonPrefix is the longest prefix of a and b that ends on a rune
// boundary, compared without regard to case (a's spelling is kept).
func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) {
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, nb := utf8.DecodeRuneInString(b[i:])
		if na != nb || !strings.EqualFold(string(ra), string(rb)) {
			break
		}
		i += na
	}
	return a[:i]
}
