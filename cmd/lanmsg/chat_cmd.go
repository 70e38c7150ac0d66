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
	"github.com/lanmsg/lanmsg/session/rooms"
)

type chatCmd struct {
	targetFlags
	trustFlags
	As   string `placeholder:"NAME" help:"Your name in the chat. Default: user@host."`
	Room string `placeholder:"NAME" default:"general" help:"The room to join (1 to 32 of a-z, 0-9, - and _). Default ${default}, the room everyone is in unless they chose another."`
	JSON bool   `help:"Print the chat as JSON Lines (t, name, text, time, names) instead of text."`
	clientFlags
}

const chatHelp = "type a line to send it; /who lists who is here; /join ROOM, /rooms; /msg NAME TEXT sends to one person; /history N shows more; /quit or Ctrl-D leaves; //text sends /text"

// chatEditorHelp adds what the terminal's line editor does.
const chatEditorHelp = chatHelp + "; Tab completes commands and names, the arrows recall lines"

func (c *chatCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	room, err := roomFlag(c.Room)
	if err != nil {
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
	cfg.Hello = &session.Hello{Name: name, Chat: true, Room: room}
	cfg.OnEvent = out.event
	cl, addr, err := c.ct.dial(ctx, t, cfg, log)
	if err != nil {
		return err
	}
	w := cl.Welcome()
	log.Info().Str(session.FieldServer, t.name).Str(session.FieldAddr, addr).Str("as", w.Name).Str("room", w.Room).Msg("joined the chat")
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
	dmID := 0
	opt.Line = func(n int, line []byte) ([]byte, bool, error) {
		switch cmd := string(bytes.TrimSpace(line)); {
		case cmd == "":
			return nil, false, nil // an empty Enter sends nothing
		case cmd == "/quit":
			return nil, false, io.EOF
		case cmd == "/who":
			return nil, false, cl.Who()
		case cmd == "/rooms":
			return nil, false, cl.Rooms()
		case cmd == "/join" || strings.HasPrefix(cmd, "/join "):
			r, err := rooms.RoomName(strings.TrimSpace(strings.TrimPrefix(cmd, "/join")))
			if err != nil {
				_, _ = fmt.Fprintf(errOut, "lanmsg: %s: %v; not joined\n", lineName(n), err)
				return nil, false, nil
			}
			return nil, false, cl.Join(r)
		case cmd == "/history" || strings.HasPrefix(cmd, "/history "):
			arg := strings.TrimSpace(strings.TrimPrefix(cmd, "/history"))
			k := session.DefaultHistory
			if arg != "" {
				var err error
				if k, err = strconv.Atoi(arg); err != nil || k < 1 || k > session.MaxHistoryPage {
					_, _ = fmt.Fprintf(errOut, "lanmsg: %s: /history takes a number of messages, 1 to %d\n", lineName(n), session.MaxHistoryPage)
					return nil, false, nil
				}
			}
			return nil, false, cl.History(k)
		case cmd == "/msg" || strings.HasPrefix(cmd, "/msg "):
			to, text, ok := splitMsg(strings.TrimPrefix(cmd, "/msg"))
			if !ok {
				_, _ = fmt.Fprintf(errOut, "lanmsg: %s: /msg NAME TEXT sends TEXT to NAME alone (a name with spaces in double quotes); not sent\n", lineName(n))
				return nil, false, nil
			}
			dmID++
			return nil, false, cl.DirectMessage(session.DirectMessage{To: to, Text: text, ID: strconv.Itoa(dmID)})
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

// roomFlag checks a --room value.
func roomFlag(s string) (string, error) {
	if s == "" {
		return rooms.DefaultRoom, nil
	}
	r, err := rooms.RoomName(s)
	if err != nil {
		return "", &cliError{code: exitUsage, err: fmt.Errorf("--room: %w", err), hint: "give a name such as general, alerts or build-1 (capitals are taken as small letters)"}
	}
	return r, nil
}

// splitMsg splits what follows /msg into the recipient's name, in double
// quotes if it holds spaces, and the text.
func splitMsg(s string) (to, text string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "\"") {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", false
		}
		to, text = s[1:1+end], s[2+end:]
	} else {
		to, text, _ = strings.Cut(s, " ")
	}
	text = strings.TrimSpace(text)
	return to, text, to != "" && text != ""
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
	room  string   // the room joined
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
	if ev.Type == session.EventWelcome {
		// Shown as who is here on joining, with the room.
		// The room is named unless it is the default one on joining, so
		// that chat in the room everyone is in looks as it always did.
		named := ev.Room != "" && (p.room != "" || ev.Room != rooms.DefaultRoom)
		p.room = ev.Room
		ev = session.Event{Type: session.EventWho, Names: ev.Names, More: ev.More, Time: ev.Time, Room: ev.Room}
		if named && !p.json {
			p.println(ev.Time.Local().Format("15:04:05") + " * room " + esc(ev.Room))
		}
	}
	if ev.Type == session.EventHistory && ev.N == 0 && ev.More == 0 {
		return // nothing to show, nothing more to ask for
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
		if ev.History {
			line = ev.Time.Local().Format("2006-01-02 15:04:05") + " (history) "
		}
		line += "[" + esc(ev.Name) + "] " + esc(ev.Text)
	case session.EventHistory:
		switch {
		case ev.More > 0:
			line += fmt.Sprintf("* %d messages of history above; %d older (/history N shows N more)", ev.N, ev.More)
		default:
			line += fmt.Sprintf("* %d messages of history above, the oldest kept", ev.N)
		}
	case session.EventRooms:
		parts := make([]string, len(ev.Rooms))
		for i, r := range ev.Rooms {
			parts[i] = fmt.Sprintf("%s (%d)", esc(r.Name), r.Members)
		}
		line += "* rooms: " + strings.Join(parts, ", ")
	case session.EventDM:
		line += "[" + esc(ev.Name) + " to you] " + esc(ev.Text)
	case session.EventDelivered:
		line += "* delivered to " + esc(ev.Name)
	case session.EventQueued:
		line += "* " + esc(ev.Name) + " is offline; the message waits on the server until they connect"
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
