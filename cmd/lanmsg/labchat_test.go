//go:build linux

package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// TestLabChat: two people on different hosts chat through a server on a
// third, found by discovery: no address is typed anywhere.
func TestLabChat(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	for i, h := range []string{"srv", "alicebox", "bobbox"} {
		labHostname(lab, i+1, h)
	}
	srv := labServe(t, lab, bin, 1, "srv")

	chat := func(i int, host, as string) (*labProc, io.WriteCloser) {
		cmd := labCmd(lab, bin, i, host, "chat", "--as", as)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		return startLabProc(t, "chat as "+as, cmd), in
	}
	has := func(s string) func(string) bool { return func(l string) bool { return strings.HasSuffix(l, s) } }
	say := func(w io.Writer, s string) {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}

	alice, aliceIn := chat(2, "alicebox", "alice")
	alice.waitLine(procStdout, 10*time.Second, "the welcome", has("* here: alice"))
	bob, bobIn := chat(3, "bobbox", "bob")
	bob.waitLine(procStdout, 10*time.Second, "the welcome", has("* here: alice, bob"))
	alice.waitLine(procStdout, 10*time.Second, "bob's join", has("* bob joined"))

	say(aliceIn, "hello from h2\n")
	bob.waitLine(procStdout, 10*time.Second, "alice's message", has("[alice] hello from h2"))
	say(bobIn, "hi from h3\n/who\n")
	alice.waitLine(procStdout, 10*time.Second, "bob's message", has("[bob] hi from h3"))
	bob.waitLine(procStdout, 10*time.Second, "the answer to /who", has("* here: alice, bob"))

	say(bobIn, "/quit\n")
	bob.wantExit(10*time.Second, 0)
	alice.waitLine(procStdout, 10*time.Second, "bob's leave", has("* bob left"))
	aliceIn.Close() // Ctrl-D
	alice.wantExit(10*time.Second, 0)

	got := messagesFrom(t, srv.stop())
	want := []string{"198.18.0.12 hello from h2", "198.18.0.13 hi from h3"}
	if !slices.Equal(got, want) {
		t.Errorf("serve printed %q, want %q", got, want)
	}
}
