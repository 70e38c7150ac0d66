package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
)

type chatCmd struct {
	targetFlags
	trustFlags
	As   string `placeholder:"NAME" help:"Your name in the chat. Default: user@host."`
	JSON bool   `help:"Print the chat as JSON Lines (t, name, text, time, names) instead of text."`
	clientFlags
}

const chatHelp = "type a line to send it; /who lists who is here; /quit or Ctrl-D leaves; //text sends /text"

// chatEditorHelp adds what the terminal's line editor does.
const chatEditorHelp = chatHelp + "; Tab completes commands and names, the arrows recall lines"

func (c *chatCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	if err := c.loadTrust(dir, std.err); err != nil {
		return err
	}
	t, err := c.trustedTarget(ctx, &c.targetFlags, log, l, chatQuestion)
	if err != nil {
		return err
	}
	if len(t.endpoints) > 0 && !t.extended && c.Server == "" && !looksLikeHostPort(c.To) {
		return &cliError{code: exitFailure, err: fmt.Errorf("server %q does not support chat (it does not advertise hello=1)", t.name),
			hint: "it may be an older lanmsg or another program; 'lanmsg send' still works with it"}
	}
	out := &chatPrinter{w: std.out, json: c.JSON}
	if f, ok := std.out.(*os.File); ok && !c.JSON && isTerminal(f) {
		out.width = terminalWidth(int(f.Fd()))
	}
	name := c.As
	if name == "" {
		name = defaultChatName()
	}
	cfg := c.clientConfig()
	cfg.Hello = &session.Hello{Name: name, Chat: true}
	cfg.OnEvent = out.event
	cl, addr, err := c.ct.dial(ctx, t, cfg, log)
	if err != nil {
		return err
	}
	w := cl.Welcome()
	log.Info().Str(session.FieldServer, t.name).Str(session.FieldAddr, addr).Str("as", w.Name).Msg("joined the chat")
	out.event(session.Event{Type: session.EventWho, Names: w.Names, Time: time.Now()})
	interactive := isTerminal(std.in)
	// The line editor when a person types and reads on a terminal; lines
	// of a stream otherwise (a pipe, a file, or output to a file or JSON
	// for a program).
	editor := interactive && isTerminal(std.out) && !c.JSON
	switch {
	case editor:
		_, _ = fmt.Fprintln(std.err, "lanmsg: "+chatEditorHelp)
	case interactive:
		_, _ = fmt.Fprintln(std.err, "lanmsg: "+chatHelp)
	}
	return c.loop(ctx, cl, addr, std, interactive, editor, out)
}

// chatInput is where chat's lines come from: the terminal's line editor, or
// the lines of a stream.
type chatInput interface {
	session.Source
	Stop()
}

// input opens chat's input. With editor, it is the terminal's line editor,
// through which everything else chat prints then goes; where the terminal
// cannot be put in raw mode, lines are read as from a stream.
func (c *chatCmd) input(std streams, editor bool, out *chatPrinter) (src chatInput, notes io.Writer) {
	if editor {
		in, _ := std.in.(*os.File)
		screen, _ := std.out.(*os.File)
		if ed, err := newLineEditor(in, screen, int(c.MaxPayload), out.roomNames); err == nil {
			out.setWriter(ed)
			return ed, ed
		}
	}
	return session.NewLines(std.in, int(c.MaxPayload)), std.err
}

// loop sends what is typed until the input ends, /quit, Ctrl-C or the
// server goes away. Ctrl-C is chat's normal way out: like /quit, it leaves
// and waits for the server to confirm what was sent.
//
// A line over --max-payload typed on a terminal gets a note on stderr (the
// person can type it again); from a pipe or file, it stops the input as in
// send: chat leaves, confirming what was sent, and reports the line.
//
// Empty lines are not sent. A line starting with / is a command: /quit, /who
// and /help, from a terminal or a pipe; any other is reported (on the
// terminal, or on stderr) and not sent. //text sends /text.
func (c *chatCmd) loop(ctx context.Context, cl *session.Client, addr string, std streams, interactive, editor bool, out *chatPrinter) error {
	src, errOut := c.input(std, editor, out)
	defer func() {
		out.setWriter(std.out) // events that still arrive go below the editor's last line
		src.Stop()
	}()
	max := int(c.MaxPayload)
	help := chatHelp
	if editor {
		help = chatEditorHelp
	}
	opt := session.DeliverOptions{Chat: true}
	opt.Line = func(n int, line []byte) ([]byte, bool, error) {
		switch cmd := string(bytes.TrimSpace(line)); {
		case cmd == "":
			return nil, false, nil // an empty Enter sends nothing
		case cmd == "/quit":
			return nil, false, io.EOF
		case cmd == "/who":
			return nil, false, cl.Who()
		case cmd == "/help":
			out.note(help)
			return nil, false, nil
		case bytes.HasPrefix(line, []byte("//")):
			return line[1:], true, nil
		case line[0] == '/':
			word, _, _ := strings.Cut(string(line), " ")
			_, _ = fmt.Fprintf(errOut, "lanmsg: %s: unknown command %s, not sent; the commands are %s; to send a line starting with /, type it as //\n",
				lineName(n), esc(word), strings.Join(chatCommands, ", "))
			return nil, false, nil
		}
		return line, true, nil
	}
	if interactive {
		opt.TooLong = func(n int) {
			_, _ = fmt.Fprintf(errOut, "lanmsg: %s is longer than the %s limit and was not sent; type it again, shorter or split\n", lineName(n), byteSize(max))
		}
	}
	rep, err := cl.Deliver(ctx, src, opt)
	var ie *session.InputError
	var left *session.ServerLeftError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &left):
		if errors.Is(left.Err, session.ErrOversizeEvent) {
			return &cliError{code: exitUnconfirmed, err: fmt.Errorf("the server at %s: %w", addr, left.Err),
				hint: "if it is a lanmsg server with a larger --max-payload, give chat the same --max-payload; otherwise do not trust it"}
		}
		return &cliError{code: exitUnconfirmed, err: fmt.Errorf("the server at %s closed the chat", addr),
			hint: "the server may have stopped; messages you sent were confirmed up to " + fmt.Sprint(rep.Acked)}
	case errors.As(err, &ie):
		return inputError(ie, lineName)
	default:
		return unconfirmed(addr, rep, messageName, err)
	}
}

// lineName names the chat's i-th line of input (from 1) in reports.
func lineName(i int) string { return "line " + strconv.Itoa(i) }

// messageName names the chat's i-th message (from 1) in reports.
func messageName(i int) string { return "message " + strconv.Itoa(i) }

func defaultChatName() string {
	name := "someone"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// chatPrinter shows chat events, from the client's reader goroutine and the
// main one, a whole line at a time.
type chatPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	names []string // who is in the room, for completion
	// width tells how wide the terminal is, for chat to wrap its lines
	// itself (chat_display.go); nil when the output is not a terminal.
	width func() int
	buf   []byte
}

// setWriter sends what is printed from now on to w.
func (p *chatPrinter) setWriter(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w = w
}

// roomNames returns who is in the room, as far as the events said.
func (p *chatPrinter) roomNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names)
}

func (p *chatPrinter) event(ev session.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Joins and leaves name one participant, or several at once.
	named := ev.Names
	if ev.Name != "" {
		named = append([]string{ev.Name}, ev.Names...)
	}
	switch ev.Type {
	case session.EventWho:
		p.names = slices.Clone(ev.Names)
	case session.EventJoin:
		for _, n := range named {
			if !slices.Contains(p.names, n) {
				p.names = append(p.names, n)
			}
		}
	case session.EventLeave:
		p.names = slices.DeleteFunc(p.names, func(n string) bool { return slices.Contains(named, n) })
	}
	if ev.Time.IsZero() {
		// The server stamps messages, joins and leaves, but not its answer
		// to /who: that is now.
		ev.Time = time.Now()
	}
	if p.json {
		b, _ := json.Marshal(ev)
		_, _ = fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	line := ev.Time.Local().Format("15:04:05") + " "
	switch ev.Type {
	case session.EventMessage:
		line += "[" + esc(ev.Name) + "] " + esc(ev.Text)
	case session.EventJoin:
		line += "* " + nameList(ev) + " joined"
	case session.EventLeave:
		line += "* " + nameList(ev) + " left"
	case session.EventWho:
		line += "* here: " + nameList(ev)
	case session.EventError:
		line += "! server: " + esc(ev.Text)
	default:
		return
	}
	p.println(line)
}

// println prints one line of chat: on a terminal, wrapped by chat itself,
// with its continuation rows indented; elsewhere, as one line.
func (p *chatPrinter) println(line string) {
	if p.width == nil {
		_, _ = fmt.Fprintln(p.w, line)
		return
	}
	p.buf = appendRows(p.buf[:0], screenText(line), p.width())
	_, _ = p.w.Write(p.buf)
}

func (p *chatPrinter) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, _ := json.Marshal(map[string]string{"t": "note", "text": s})
		_, _ = fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	p.println("* " + s)
}

// nameList is the names an event lists (or its one name), escaped, and how
// many more it did not list.
func nameList(ev session.Event) string {
	names := make([]string, 0, len(ev.Names)+1)
	if ev.Name != "" {
		names = append(names, esc(ev.Name))
	}
	for _, n := range ev.Names {
		names = append(names, esc(n))
	}
	s := strings.Join(names, ", ")
	if ev.More > 0 {
		s += fmt.Sprintf(" and %d more", ev.More)
	}
	return s
}

// esc keeps other people's text on one line and away from the terminal's
// control sequences.
func esc(s string) string { return string(session.AppendEscaped(nil, []byte(s))) }
