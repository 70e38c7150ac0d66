//go:build linux

package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// roomLab is a lab with a server on h1 and chat participants on the other
// hosts, each with its own key.
type roomLab struct {
	t   *testing.T
	bin string
	lab *netlab.Lab
	srv *labServer
}

func newRoomLab(t *testing.T, hosts int, serveArgs ...string) *roomLab {
	bin := labLanmsg(t)
	lab := netlab.Up(t, hosts)
	labHostname(lab, 1, "srv")
	rl := &roomLab{t: t, bin: bin, lab: lab}
	rl.srv = labServe(t, lab, bin, 1, "srv", serveArgs...)
	return rl
}

// chatter is a 'lanmsg chat' on a lab host, its stdin a pipe.
type chatter struct {
	*labProc
	in io.WriteCloser
}

func (rl *roomLab) chat(i int, args ...string) *chatter {
	rl.t.Helper()
	cmd := labCmd(rl.lab, rl.bin, i, "", append([]string{"chat"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		rl.t.Fatal(err)
	}
	return &chatter{labProc: startLabProc(rl.t, "chat "+strings.Join(args, " "), cmd), in: in}
}

func (c *chatter) say(lines ...string) {
	c.t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(c.in, l+"\n"); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *chatter) see(what, suffix string) {
	c.t.Helper()
	c.waitLine(procStdout, 15*time.Second, what, func(l string) bool { return strings.HasSuffix(l, suffix) })
}

func (c *chatter) quit() {
	c.t.Helper()
	c.say("/quit")
	c.wantExit(15*time.Second, 0)
}

// never fails if any line printed so far contains s.
func (c *chatter) never(who, s string) {
	c.t.Helper()
	for _, l := range c.output(procStdout) {
		if strings.Contains(l, s) {
			c.t.Errorf("%s saw %q: %q", who, s, l)
		}
	}
}

// TestLabRooms: three participants in two rooms each see only their room;
// a script posts into a room with send --room; /rooms counts the members;
// the server prints every message with its room.
func TestLabRooms(t *testing.T) {
	rl := newRoomLab(t, 5, "--format", "json")
	alice := rl.chat(2, "--as", "alice", "--room", "x")
	alice.see("alice's welcome", "* here: alice")
	bob := rl.chat(3, "--as", "bob", "--room", "x")
	bob.see("bob's welcome", "* here: alice, bob")
	carol := rl.chat(4, "--as", "carol", "--room", "y")
	carol.see("carol's room", "* room y")
	carol.see("carol's welcome", "* here: carol")

	carol.say("said in y")
	alice.say("said in x")
	bob.see("alice's message", "[alice] said in x")
	p := labRun(t, rl.lab, rl.bin, 5, 20*time.Second, "send", "--room", "x", "--as", "cron", "disk full")
	p.wantCode(0)
	bob.see("the posted message", "[cron] disk full")
	alice.see("the posted message", "[cron] disk full")
	bob.say("said in x too")
	alice.see("bob's message", "[bob] said in x too")
	carol.say("/rooms")
	carol.see("the rooms", "* rooms: general (0), x (2), y (1)")

	alice.quit()
	bob.quit()
	carol.quit()
	alice.never("alice", "said in y")
	bob.never("bob", "said in y")
	carol.never("carol", "said in x")
	carol.never("carol", "disk full")

	// The server printed every message, with its room.
	rooms := map[string]string{}
	for _, l := range rl.srv.stop() {
		var m struct{ Name, Room, Text string }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("serve printed %q: %v", l, err)
		}
		rooms[m.Text] = m.Name + "@" + m.Room
	}
	for text, want := range map[string]string{"said in y": "carol@y", "said in x": "alice@x", "disk full": "cron@x", "said in x too": "bob@x"} {
		if rooms[text] != want {
			t.Errorf("serve printed %q as %q, want %q (all: %v)", text, rooms[text], want, rooms)
		}
	}
}

// TestLabRoomHistory: joining a room shows its last messages, marked as
// history, also after the server restarts; /history pages further back.
func TestLabRoomHistory(t *testing.T) {
	rl := newRoomLab(t, 3, "--history", "3")
	alice := rl.chat(2, "--as", "alice", "--room", "h")
	alice.see("alice's welcome", "* here: alice")
	for _, m := range []string{"m1", "m2", "m3", "m4", "m5"} {
		alice.say(m)
	}
	alice.quit() // confirmed: every message is written out, and so stored
	bob := rl.chat(3, "--as", "bob", "--room", "h")
	bob.see("the history", "(history) [alice] m3")
	bob.see("the history", "(history) [alice] m5")
	bob.see("the history's end", "* 3 messages of history above; 2 older (/history N shows N more)")
	bob.quit()
	bob.never("bob", "[alice] m2")

	// After a restart, on the same data dir.
	rl.srv.stop()
	rl.srv = labServe(t, rl.lab, rl.bin, 1, "srv", "--history", "3")
	carol := rl.chat(3, "--as", "carol", "--room", "h")
	carol.see("the history after a restart", "(history) [alice] m3")
	carol.see("the history after a restart", "(history) [alice] m5")
	carol.say("/history 10")
	carol.see("the page before", "(history) [alice] m1")
	carol.see("the page before", "(history) [alice] m2")
	carol.see("the page's end", "* 2 messages of history above, the oldest kept")
	carol.quit()
}

// TestLabDirectMessages: a direct message reaches only its recipient, who
// may be in another room; one to someone offline waits and is delivered
// when they are back; the sender is told delivered each time.
func TestLabDirectMessages(t *testing.T) {
	rl := newRoomLab(t, 4)
	alice := rl.chat(2, "--as", "alice")
	alice.see("alice's welcome", "* here: alice")
	bob := rl.chat(3, "--as", "bob", "--room", "elsewhere")
	bob.see("bob's welcome", "* here: bob")
	carol := rl.chat(4, "--as", "carol")
	carol.see("carol's welcome", "* here: alice, carol")

	alice.say("/msg bob psst")
	bob.see("the direct message", "[alice to you] psst")
	alice.see("the receipt", "* delivered to bob")
	bob.quit()

	alice.say("/msg bob while you were out")
	alice.see("queued", "* bob is offline; the message waits on the server until they connect")
	bob = rl.chat(3, "--as", "bob")
	bob.see("the waiting message", "[alice to you] while you were out")
	alice.see("the late receipt", "* delivered to bob")
	alice.say("/msg nobody hello")
	alice.see("the error", "direct message to nobody: nobody of that name is here, nor owns that name")
	alice.say("public")
	carol.see("alice's public message", "[alice] public")
	bob.quit()
	alice.quit()
	carol.quit()
	carol.never("carol", "psst")
	carol.never("carol", "while you were out")
	for _, l := range rl.srv.stop() {
		if strings.Contains(l, "psst") || strings.Contains(l, "while you were out") {
			t.Errorf("serve printed a direct message: %q", l)
		}
	}
}
