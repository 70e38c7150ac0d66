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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/transport"
)

type chatCmd struct {
	targetFlags
	As   string `placeholder:"NAME" help:"Your name in the chat. Default: user@host."`
	JSON bool   `help:"Print the chat as JSON Lines (t, name, text, time, names) instead of text."`
	clientFlags
}

const chatHelp = "type a line to send it; /who lists who is here; /quit or Ctrl-D leaves"

func (c *chatCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan) error {
	if err := c.check(c.BrowseTimeout); err != nil {
		return err
	}
	t, err := c.target(ctx, log, l, chatQuestion)
	if err != nil {
		return err
	}
	if len(t.endpoints) > 0 && !t.extended && c.Server == "" && !looksLikeHostPort(c.To) {
		return &cliError{code: exitFailure, err: fmt.Errorf("server %q does not support chat (it does not advertise hello=1)", t.name),
			hint: "it may be an older lanmsg or another program; 'lanmsg send' still works with it"}
	}
	out := &chatPrinter{w: std.out, json: c.JSON}
	name := c.As
	if name == "" {
		name = defaultChatName()
	}
	cfg := c.clientConfig()
	cfg.Hello = &session.Hello{Name: name, Chat: true}
	cfg.OnEvent = out.event
	cl, addr, err := dialFirst(ctx, t, cfg, log)
	if err != nil {
		return err
	}
	w := cl.Welcome()
	log.Info().Str("server", t.name).Str("addr", addr).Str("as", w.Name).Msg("joined the chat")
	out.event(session.Event{Type: session.EventWho, Names: w.Names, Time: time.Now()})
	if isTerminal(std.in) {
		_, _ = fmt.Fprintln(std.err, "lanmsg: "+chatHelp)
	}
	return c.loop(ctx, cl, addr, std.in, isTerminal(std.in), out, std.err)
}

// loop sends what is typed until the input ends, /quit, Ctrl-C or the
// server goes away. Ctrl-C is chat's normal way out: like /quit, it leaves
// and waits for the server to confirm what was sent.
//
// A line over --max-payload typed on a terminal gets a note on stderr (the
// person can type it again); from a pipe or file, it stops the input as in
// send: chat leaves, confirming what was sent, and reports the line.
func (c *chatCmd) loop(ctx context.Context, cl *session.Client, addr string, in io.Reader, interactive bool, out *chatPrinter, errOut io.Writer) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-cl.Done():
			cancel(errServerLeft)
		case <-lctx.Done():
		}
	}()
	src := newLineSource(lctx, in, int(c.MaxPayload))
	defer src.stop()
	max := int(c.MaxPayload)
	for {
		line, err := src.next()
		if err == nil {
			switch string(bytes.TrimSpace(line)) {
			case "/quit":
				return c.leave(cl, addr)
			case "/who":
				if err := cl.Who(); err != nil {
					return unconfirmed(addr, cl, messageName, err)
				}
				continue
			case "/help":
				out.note(chatHelp)
				continue
			}
			err = cl.Send(line)
			switch {
			case err == nil:
				if src.drained() {
					if err := cl.Flush(); err != nil {
						_ = cl.Abort()
						return unconfirmed(addr, cl, messageName, err)
					}
				}
				continue
			case !errors.Is(err, transport.ErrFrameTooLarge):
				_ = cl.Abort()
				return unconfirmed(addr, cl, messageName, err)
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return c.leave(cl, addr)
		case ctx.Err() != nil: // Ctrl-C
			return c.leave(cl, addr)
		case lctx.Err() != nil: // the server went away
			_ = cl.Abort()
			return &cliError{code: exitUnconfirmed, err: fmt.Errorf("the server at %s closed the chat", addr),
				hint: "the server may have stopped; messages you sent were confirmed up to " + fmt.Sprint(cl.Acked())}
		case errors.Is(err, errTooLong), errors.Is(err, transport.ErrFrameTooLarge):
			if interactive {
				_, _ = fmt.Fprintf(errOut, "lanmsg: %s is longer than the %s limit and was not sent; type it again, shorter or split\n", src.name(), byteSize(max))
				continue
			}
			return c.stopInput(cl, addr, tooLongError(src.name(), max))
		default:
			return c.stopInput(cl, addr, readError(src.name(), err))
		}
	}
}

// errServerLeft ends the wait for input when the server closes the chat.
var errServerLeft = errors.New("the server closed the chat")

// stopInput leaves after the input could not go on, confirming what was
// sent, and returns why it stopped (or, if the server did not confirm, that).
func (c *chatCmd) stopInput(cl *session.Client, addr string, why error) error {
	if err := c.leave(cl, addr); err != nil {
		return err
	}
	return why
}

// leave ends the session and checks that every message was confirmed.
func (c *chatCmd) leave(cl *session.Client, addr string) error {
	if err := cl.Close(); err != nil {
		return unconfirmed(addr, cl, messageName, err)
	}
	return nil
}

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
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func (p *chatPrinter) event(ev session.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, _ := json.Marshal(ev)
		_, _ = fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	ts := ev.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	line := ts.Local().Format("15:04:05") + " "
	switch ev.Type {
	case session.EventMessage:
		line += "[" + esc(ev.Name) + "] " + esc(ev.Text)
	case session.EventJoin:
		line += "* " + esc(ev.Name) + " joined"
	case session.EventLeave:
		line += "* " + esc(ev.Name) + " left"
	case session.EventWho:
		names := make([]string, len(ev.Names))
		for i, n := range ev.Names {
			names[i] = esc(n)
		}
		line += "* here: " + strings.Join(names, ", ")
	case session.EventError:
		line += "! server: " + esc(ev.Text)
	default:
		return
	}
	_, _ = fmt.Fprintln(p.w, line)
}

func (p *chatPrinter) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, _ := json.Marshal(map[string]string{"t": "note", "text": s})
		_, _ = fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	_, _ = fmt.Fprintln(p.w, "* "+s)
}

// esc keeps other people's text on one line and away from the terminal's
// control sequences.
func esc(s string) string { return string(session.AppendEscaped(nil, []byte(s))) }
