package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// startServerCtl is startServer with a handle on the server.
func startServerCtl(t *testing.T) (*session.Server, string, *sessiontest.SyncBuffer) {
	t.Helper()
	return startServerWith(t, session.Text)
}

// chatProc runs 'lanmsg chat' in-process with its stdin a pipe.
type chatProc struct {
	in   *io.PipeWriter
	out  *sessiontest.SyncBuffer
	errb *sessiontest.SyncBuffer
	done chan int
}

func startChat(t *testing.T, l lan, args ...string) *chatProc {
	t.Helper()
	r, w := io.Pipe()
	p := &chatProc{in: w, out: &sessiontest.SyncBuffer{}, errb: &sessiontest.SyncBuffer{}, done: make(chan int, 1)}
	go func() {
		p.done <- runWith(l, append([]string{"--log-format", "json", "chat"}, args...), r, p.out, p.errb)
	}()
	return p
}

func (p *chatProc) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *chatProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("chat did not end; stderr:\n%s", p.errb.String())
		return -1
	}
}

func TestChat(t *testing.T) {
	srv, addr, out := startServerCtl(t)
	alice := startChat(t, refusingLAN{}, "--server", addr, "--as", "alice")
	sessiontest.WaitFor(t, 10*time.Second, "alice to join", func() bool { return strings.Contains(alice.out.String(), "* here: alice\n") })
	bob := startChat(t, refusingLAN{}, "--server", addr, "--as", "bob")
	sessiontest.WaitFor(t, 10*time.Second, "alice to see bob join", func() bool { return strings.Contains(alice.out.String(), "* bob joined\n") })

	bob.say(t, "hi alice")
	bob.say(t, "!not a command")
	bob.say(t, "/who")
	sessiontest.WaitFor(t, 10*time.Second, "bob's /who", func() bool { return strings.Contains(bob.out.String(), "* here: alice, bob\n") })
	sessiontest.WaitFor(t, 10*time.Second, "alice to get bob's messages", func() bool { return strings.Contains(alice.out.String(), "[bob] !not a command\n") })
	alice.say(t, "hello \x1b[31mbob")
	sessiontest.WaitFor(t, 10*time.Second, "bob to get alice's message, escaped", func() bool { return strings.Contains(bob.out.String(), `[alice] hello \x1b[31mbob`+"\n") })

	bob.say(t, "/quit")
	if code := bob.wait(t); code != 0 {
		t.Fatalf("bob exited %d:\n%s", code, bob.errb.String())
	}
	sessiontest.WaitFor(t, 10*time.Second, "alice to see bob leave", func() bool { return strings.Contains(alice.out.String(), "* bob left\n") })
	alice.in.Close() // Ctrl-D
	if code := alice.wait(t); code != 0 {
		t.Fatalf("alice exited %d:\n%s", code, alice.errb.String())
	}

	a := alice.out.String()
	if !strings.Contains(a, "[bob] hi alice\n") || strings.Contains(a, "[alice]") || strings.Contains(a, "/who") {
		t.Errorf("alice's screen:\n%s", a)
	}
	// The server's stdout logs every message, as for send.
	for _, m := range []string{" : hi alice\n", " : !not a command\n", ` : hello \x1b[31mbob` + "\n"} {
		if !strings.Contains(out.String(), m) {
			t.Errorf("server output lacks %q:\n%s", m, out.String())
		}
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

func TestChatPipeJSON(t *testing.T) {
	_, addr, out := startServerCtl(t)
	var o, e bytes.Buffer
	code := runWith(refusingLAN{}, []string{"chat", "--server", addr, "--as", "script", "--json"}, strings.NewReader("one\ntwo\n"), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, e.String())
	}
	if !strings.Contains(o.String(), `{"t":"who","time":`) || !strings.Contains(o.String(), `"names":["script"]`) {
		t.Errorf("stdout:\n%s", o.String())
	}
	if !strings.Contains(out.String(), " : one\n") || !strings.Contains(out.String(), " : two\n") {
		t.Errorf("server output:\n%s", out.String())
	}
}

func TestChatNeedsExtension(t *testing.T) {
	addr := plainServer(t)
	code, _, errOut := runFake(t, refusingLAN{}, "", "chat", "--server", addr, "--confirm-timeout", "300ms")
	if code != exitUnconfirmed || !strings.Contains(errOut, "does not support receipts or chat") || !strings.Contains(errOut, "lanmsg: hint:") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
	// send --receipts to such a server: connected, so not "cannot connect".
	code, _, errOut = runFake(t, refusingLAN{}, "", "send", "--server", addr, "--receipts", "--confirm-timeout", "300ms", "hi")
	if code != exitUnconfirmed || !strings.Contains(errOut, "does not support receipts or chat") || !strings.Contains(errOut, "without --receipts") {
		t.Errorf("send --receipts to a plain server: exit %d:\n%s", code, errOut)
	}
	l := &fakeLAN{services: []discovery.Service{svc(t, "old", addr)}} // no hello=1 in TXT
	code, _, errOut = runFake(t, l, "", "chat", "--browse-timeout", "50ms")
	if code != exitFailure || !strings.Contains(errOut, `server "old" does not support chat`) {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// plainServer speaks only the plain protocol: it reads and never writes,
// closing after !DISCONNECT like the tutorial's server.
func plainServer(t *testing.T) string {
	return fakeServer(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		var seen []byte
		for {
			n, err := c.Read(buf)
			seen = append(seen, buf[:n]...)
			if err != nil || bytes.Contains(seen, []byte("!DISCONNECT")) {
				return
			}
		}
	})
}

func TestSendReceiptsUsedWhenAdvertised(t *testing.T) {
	_, addr, out := startServerCtl(t)
	s := svc(t, "kitchen", addr)
	s.TXT["hello"] = "1"
	code, _, errOut := runFake(t, &fakeLAN{services: []discovery.Service{s}}, "", "send", "--to", "kitchen", "!DISCONNECT", "after")
	if code != 0 || !strings.Contains(errOut, `"receipts":true`) {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	// With the extension, a message that is exactly !DISCONNECT is text.
	if !strings.Contains(out.String(), " : !DISCONNECT\n") || !strings.Contains(out.String(), " : after\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestSendPlainRefusesDisconnectMessage(t *testing.T) {
	_, addr, out := startServerCtl(t)
	code, _, errOut := runFake(t, refusingLAN{}, "before\n!DISCONNECT\nafter\n", "send", "--server", addr)
	if code != exitUsage || !strings.Contains(errOut, "line 2 is exactly !DISCONNECT") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !strings.Contains(out.String(), " : before\n") || strings.Contains(out.String(), "after") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestSendReceiptsNameFirstUndelivered: the server shuts down mid-stream;
// send names exactly the first line the server did not write out.
func TestSendReceiptsNameFirstUndelivered(t *testing.T) {
	srv, addr, out := startServerCtl(t)
	r, w := io.Pipe()
	done := make(chan struct{})
	var o, e bytes.Buffer
	var code int
	go func() {
		code = runWith(refusingLAN{}, []string{"--log-format", "json", "send", "--server", addr, "--receipts"}, r, &o, &e)
		close(done)
	}()
	go func() {
		for i := 1; ; i++ {
			if _, err := io.WriteString(w, "line "+strconv.Itoa(i)+"\n"); err != nil {
				return
			}
		}
	}()
	sessiontest.WaitFor(t, 10*time.Second, "1000 lines delivered", func() bool { return strings.Count(out.String(), "\n") >= 1000 })
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	r.CloseWithError(io.ErrClosedPipe)
	delivered := strings.Count(out.String(), "\n")
	if code != exitUnconfirmed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUnconfirmed, e.String())
	}
	want := "the server confirmed " + strconv.Itoa(delivered) + " of the "
	first := "line " + strconv.Itoa(delivered+1) + " and everything after it were not delivered"
	if !strings.Contains(e.String(), want) || !strings.Contains(e.String(), first) {
		t.Errorf("output has %d lines; stderr should say %q and %q:\n%s", delivered, want, first, e.String())
	}
	// What was delivered is exactly lines 1..delivered, in order.
	for i, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if !strings.HasSuffix(l, " : line "+strconv.Itoa(i+1)) {
			t.Fatalf("output line %d is %q", i+1, l)
		}
	}
}
