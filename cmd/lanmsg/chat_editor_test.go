//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session"
)

// tmuxPane is a program running in a terminal that tmux emulates: the test
// types on its keyboard and reads its screen as a person would see it.
type tmuxPane struct {
	t    *testing.T
	sock string
}

// startTmux runs argv in a new tmux server of the test's own (its socket in
// a temporary directory), in a width x height terminal. When argv exits, the
// pane shows "[exit N]" and stays. The server is ended when the test ends.
func startTmux(t *testing.T, width, height int, argv ...string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	p := &tmuxPane{t: t, sock: filepath.Join(t.TempDir(), "tmux")}
	args := append([]string{"-S", p.sock, "-f", "/dev/null", "new-session", "-d", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height),
		"sh", "-c", `"$@"; echo "[exit $?]"; exec sleep 600`, "sh"}, argv...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.sock, "kill-server").Run() }) // this test's server only
	return p
}

// keys types on the pane's keyboard: tmux key names (Enter, Up, Tab, C-c).
func (p *tmuxPane) keys(keys ...string) {
	p.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"-S", p.sock, "send-keys"}, keys...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys %q: %v: %s", keys, err, out)
	}
}

// typeText types s literally.
func (p *tmuxPane) typeText(s string) { p.keys("-l", s) }

// screen is what the terminal shows now, one string per row, without
// trailing blanks, and without the empty rows below the last one used.
func (p *tmuxPane) screen() []string {
	p.t.Helper()
	out, err := exec.Command("tmux", "-S", p.sock, "capture-pane", "-p").Output()
	if err != nil {
		p.t.Fatalf("tmux capture-pane: %v", err)
	}
	rows := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := range rows {
		rows[i] = strings.TrimRight(rows[i], " ")
	}
	return rows
}

// waitScreen waits until ok accepts the screen, and returns it. The screen
// changes without telling anyone, so this is a poll, bounded in time.
func (p *tmuxPane) waitScreen(what string, ok func(rows []string) bool) []string {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows := p.screen()
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal did not show %s; it shows:\n%s", what, strings.Join(rows, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastRow is the bottom row in use: where the line being typed is.
func lastRow(rows []string) string { return rows[len(rows)-1] }

// chatPeer is another participant, in-process, whose messages the test
// sends and whose view of the room it records.
type chatPeer struct {
	cl   *session.Client
	mu   sync.Mutex
	got  []string // messages received, "name: text"
	more chan struct{}
}

func joinChat(t *testing.T, addr, name string) *chatPeer {
	t.Helper()
	p := &chatPeer{more: make(chan struct{}, 1)}
	cl, err := session.Dial(t.Context(), addr, session.ClientConfig{Hello: &session.Hello{Name: name, Chat: true}, OnEvent: func(ev session.Event) {
		if ev.Type != session.EventMessage {
			return
		}
		p.mu.Lock()
		p.got = append(p.got, ev.Name+": "+ev.Text)
		p.mu.Unlock()
		select {
		case p.more <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.cl = cl
	t.Cleanup(func() { _ = cl.Abort() })
	return p
}

func (p *chatPeer) say(t *testing.T, text string) {
	t.Helper()
	if err := p.cl.Send([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := p.cl.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitGot waits until the peer has received n messages, and returns them.
func (p *chatPeer) waitGot(t *testing.T, n int) []string {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		p.mu.Lock()
		got := slices.Clone(p.got)
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-p.more:
		case <-timer.C:
			t.Fatalf("received %q, waiting for %d messages", got, n)
		}
	}
}

var chatMessageRow = regexp.MustCompile(`^\d\d:\d\d:\d\d \[bob\] `)

// TestChatEditor runs chat in a real terminal (tmux) and types in it as a
// person would: a message that arrives while a line is half typed prints
// above it, and the line is still there to finish; the arrows recall earlier
// lines; Tab completes commands and names; unknown commands and empty lines
// are not sent, and //text sends /text.
func TestChatEditor(t *testing.T) {
	bin := labLanmsg(t)
	_, addr, _ := startServerCtl(t)
	bob := joinChat(t, addr, "bob")
	pane := startTmux(t, 100, 30, bin, "chat", "--server", addr, "--as", "alice")
	pane.waitScreen("the prompt after the room", func(rows []string) bool {
		return slices.ContainsFunc(rows, func(r string) bool {
			return strings.HasSuffix(r, "* here: bob, alice") || strings.HasSuffix(r, "* here: alice, bob")
		}) &&
			lastRow(rows) == ">"
	})

	// A message arrives while a line is half typed.
	pane.typeText("half typed")
	pane.waitScreen("the half-typed line", func(rows []string) bool { return lastRow(rows) == "> half typed" })
	bob.say(t, "hello from bob")
	rows := pane.waitScreen("bob's message above the line being typed", func(rows []string) bool {
		return len(rows) >= 2 && chatMessageRow.MatchString(rows[len(rows)-2]) && lastRow(rows) == "> half typed"
	})
	if got := rows[len(rows)-2]; !strings.HasSuffix(got, "[bob] hello from bob") {
		t.Errorf("bob's message shows as %q", got)
	}
	for _, r := range rows {
		if strings.Contains(r, "half typed") && strings.Contains(r, "bob") {
			t.Errorf("bob's message landed in the line being typed: %q", r)
		}
	}
	pane.typeText(", now done")
	pane.keys("Enter")
	if got := bob.waitGot(t, 1); got[0] != "alice: half typed, now done" {
		t.Fatalf("bob received %q", got)
	}

	// History: up arrow recalls the lines sent, most recent first.
	pane.typeText("second")
	pane.keys("Enter")
	bob.waitGot(t, 2)
	pane.keys("Up", "Up")
	pane.waitScreen("the first line recalled", func(rows []string) bool { return lastRow(rows) == "> half typed, now done" })
	pane.keys("Down")
	pane.waitScreen("the second line recalled", func(rows []string) bool { return lastRow(rows) == "> second" })
	pane.keys("C-u") // erase it

	// Tab completes a command, then a name in the room.
	pane.typeText("/wh")
	pane.keys("Tab")
	pane.waitScreen("/who completed", func(rows []string) bool { return lastRow(rows) == "> /who" })
	pane.keys("Enter")
	pane.waitScreen("the answer to /who", func(rows []string) bool {
		n := 0
		for _, r := range rows {
			if strings.Contains(r, "* here: ") {
				n++
			}
		}
		return n == 2
	})
	pane.typeText("thanks B")
	pane.keys("Tab")
	pane.waitScreen("bob's name completed", func(rows []string) bool { return lastRow(rows) == "> thanks bob" })
	pane.keys("Enter")

	// Not sent: an unknown command (with a hint on the screen), an empty
	// line. Sent: //text as /text.
	pane.typeText("/qiut")
	pane.keys("Enter")
	pane.waitScreen("the hint for /qiut", func(rows []string) bool {
		return slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "unknown command /qiut, not sent") })
	})
	pane.keys("Enter")
	pane.typeText("//slash")
	pane.keys("Enter")
	want := []string{"alice: half typed, now done", "alice: second", "alice: thanks bob", "alice: /slash"}
	if got := bob.waitGot(t, len(want)); !slices.Equal(got, want) {
		t.Errorf("bob received %q, want %q", got, want)
	}

	pane.typeText("/quit")
	pane.keys("Enter")
	rows = pane.waitScreen("chat to end", func(rows []string) bool { return strings.HasPrefix(lastRow(rows), "[exit ") })
	if lastRow(rows) != "[exit 0]" {
		t.Errorf("chat ended with %s:\n%s", lastRow(rows), strings.Join(rows, "\n"))
	}
	if got := bob.waitGot(t, len(want)); len(got) != len(want) {
		t.Errorf("bob received more: %q", got)
	}
}

// TestChatEditorWrapsIncoming: in a real terminal (tmux, 60 columns), a
// message padded to the width of the screen to forge "* alice left", and a
// long one, show as chat wraps them: continuation rows indented, no row
// starting with a message's text, so the only system lines on the screen
// are lanmsg's own; and the line being typed stays at the bottom.
func TestChatEditorWrapsIncoming(t *testing.T) {
	const width = 60
	bin := labLanmsg(t)
	_, addr, _ := startServerCtl(t)
	bob := joinChat(t, addr, "bob")
	pane := startTmux(t, width, 30, bin, "chat", "--server", addr, "--as", "alice")
	pane.waitScreen("the prompt after the room", func(rows []string) bool {
		return slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "* here: ") }) && lastRow(rows) == ">"
	})
	head := len("12:00:00 [bob] ")
	forged := "12:00:00 * alice left"
	bob.say(t, strings.Repeat(" ", width-head)+forged)
	bob.say(t, strings.Repeat(" ", width-head-1)+"世"+forged)
	bob.say(t, strings.Repeat("long text ", 12)+"end")
	rows := pane.waitScreen("the long message's end", func(rows []string) bool {
		return slices.ContainsFunc(rows, func(r string) bool { return strings.HasSuffix(r, "text end") })
	})
	show := strings.Join(rows, "\n")
	if lastRow(rows) != ">" {
		t.Errorf("the prompt is not on the last row:\n%s", show)
	}
	// From bob's first message on (above: the logs and the help, on
	// stderr), every row is a message, its continuation, or the prompt.
	fromBob := regexp.MustCompile(`^\d\d:\d\d:\d\d \[bob\]( |$)`)
	first := slices.IndexFunc(rows, fromBob.MatchString)
	if first < 0 {
		t.Fatalf("no message from bob:\n%s", show)
	}
	messages, continued := 0, 0
	for _, r := range rows[first : len(rows)-1] {
		switch {
		case fromBob.MatchString(r):
			messages++
		case strings.HasPrefix(r, strings.Repeat(" ", chatIndent)):
			continued++
		default:
			t.Errorf("row %q is neither a message nor a continuation row:\n%s", r, show)
		}
		if strings.Contains(r, "alice left") && !strings.HasPrefix(r, strings.Repeat(" ", chatIndent)) {
			t.Errorf("the forged leave is not indented: %q\n%s", r, show)
		}
	}
	if messages != 3 || continued < 4 {
		t.Errorf("%d messages on %d continuation rows, want 3 on at least 4:\n%s", messages, continued, show)
	}
	pane.typeText("/quit")
	pane.keys("Enter")
	pane.waitScreen("chat to end", func(rows []string) bool { return lastRow(rows) == "[exit 0]" })
}
