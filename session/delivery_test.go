package session

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// TestReceiptBeforeDrained: the output counts and acknowledges a batch
// before the session can see it written; otherwise a session that drains
// its output and closes at once sends its last receipt too early, and a
// client whose every message was written is told they were not. (The hook
// widens the gap between the two.)
func TestReceiptBeforeDrained(t *testing.T) {
	hook := func() { time.Sleep(20 * time.Millisecond) }
	testHookWritten.Store(&hook)
	defer testHookWritten.Store(nil)
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{Hello: &Hello{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	ts.waitMessagesWritten(t)
	if err := cl.Close(); err != nil {
		t.Errorf("Close: %v; output %q", err, ts.out.String())
	}
}

// waitMessagesWritten waits until the output holds a line.
func (ts *testServer) waitMessagesWritten(t *testing.T) {
	t.Helper()
	sessiontest.WaitFor(t, 5*time.Second, "a line in the output", func() bool { return len(ts.out.Lines()) > 0 })
}

// slowOutput takes 200 µs for every write.
type slowOutput struct{ n atomic.Int64 }

func (w *slowOutput) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// TestHeaderTimeoutWhileStreaming: a client that streams frames without a
// pause, to a server slower than it, is never taken for one that stalls in
// a header: the header clock starts anew with each frame.
func TestHeaderTimeoutWhileStreaming(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{HeaderTimeout: 300 * time.Millisecond}, Text, &slowOutput{})
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("0123456789012345678901234567890123456789")
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if err := cl.Send(msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestDrainingForgetsReleased: a shed session's account leaves the
// budget's draining set once it holds nothing, so that nothing keeps the
// session reachable after an attack.
func TestDrainingForgetsReleased(t *testing.T) {
	b := newBudget(1000)
	var accts []*account
	for _, n := range []int{100, 600} {
		a := &account{b: b}
		a.onShed = func() {}
		accts = append(accts, a)
		a.setReading(n)
	}
	b.victims = func(yield func(*account) bool) {
		for _, a := range accts {
			if !yield(a) {
				return
			}
		}
	}
	accts[0].setBatch(400) // 1100 > 1000: sheds the one holding 600
	if got := b.shed.Load(); got != 1 {
		t.Fatalf("shed %d, want 1", got)
	}
	accts[1].setReading(0) // its session ends and lets go of everything
	accts[0].setBatch(0)
	b.drainMu.Lock()
	defer b.drainMu.Unlock()
	if len(b.draining) != 0 {
		t.Errorf("%d accounts holding nothing still in the draining set", len(b.draining))
	}
}

// rateOutput writes at about 200 MB/s: slower than the senders, never
// stuck.
type rateOutput struct{ n atomic.Int64 }

func (w *rateOutput) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(len(p)) * 5 * time.Nanosecond)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// TestSlowOutputSlowsSenders: with an output slower than its senders (but
// moving), 130 honest bulk senders are slowed down, not shed: what they
// hand over waits within a quarter of the memory budget, so the budget is
// never what stops them.
func TestSlowOutputSlowsSenders(t *testing.T) {
	t.Parallel()
	out := &rateOutput{}
	const senders, each = 130, 1 << 20
	ts := startServer(t, Config{MaxSessionsPerHost: senders}, Text, out)
	msg := make([]byte, 4000)
	for i := range msg {
		msg[i] = 'z'
	}
	errs := make(chan error, senders)
	for range senders {
		go func() {
			cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
			if err != nil {
				errs <- err
				return
			}
			for sent := 0; sent < each; sent += len(msg) {
				if err := cl.Send(msg); err != nil {
					_ = cl.Abort()
					errs <- err
					return
				}
			}
			errs <- cl.Close()
		}()
	}
	failed := 0
	for range senders {
		if err := <-errs; err != nil {
			failed++
			t.Logf("sender: %v", err)
		}
	}
	st := ts.srv.Budget()
	t.Logf("%d senders of %d bytes into an output of about 200 MB/s: %d failed, %d shed (budget %d bytes)", senders, each, failed, st.Shed, st.Limit)
	if failed > 0 || st.Shed > 0 {
		t.Errorf("%d senders failed and %d were shed because the output is slower than they are", failed, st.Shed)
	}
}

// TestVersion1Client: a client of the extension's version 1 (the previous
// release) is served as before: never pinged nor dropped for silence, text
// always in "text" even when base64 would be shorter, and a batch of joins
// as one name.
func TestVersion1Client(t *testing.T) {
	t.Parallel()
	const interval = 50 * time.Millisecond
	ts := startServer(t, Config{PingInterval: interval, MaxSessionsPerHost: 100}, Text, nil)
	old := dialRaw(t, ts.addr)
	mustWrite(t, old, frame(`!HELLO {"v":1,"name":"old","chat":true}`))
	fr := transport.NewReader(old, 0)
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	next := func() Event {
		t.Helper()
		p, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("the version 1 client: %v", err)
		}
		var ev Event
		if err := json.Unmarshal(p, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if ev := next(); ev.Type != EventWelcome {
		t.Fatalf("first event %+v, want the welcome", ev)
	}
	// Two join at once: one event, the names in "name". They are version 1
	// clients too, so they are not pinged: a raw version 2 client that never
	// answers is dropped after a few intervals, which on a loaded machine
	// came before this test had used them.
	var raws []net.Conn
	for _, n := range []string{"a", "b"} {
		c := dialRaw(t, ts.addr)
		mustWrite(t, c, frame(`!HELLO {"v":1,"name":"`+n+`","chat":true}`))
		raws = append(raws, c)
	}
	// (The batch may also name "old", which joined within the same 50 ms.)
	seen := ""
	for !strings.Contains(seen, "b") {
		ev := next()
		if ev.Type != EventJoin || len(ev.Names) != 0 {
			t.Fatalf("event %+v, want joins with the names in \"name\"", ev)
		}
		seen += ev.Name + ", "
	}
	if !strings.Contains(seen, "a, ") {
		t.Fatalf("joins announced as %q, want a and b", seen)
	}
	var ev Event
	// A message of control bytes: in "text".
	ctrl := string(bytes.Repeat([]byte{1}, 100))
	mustWrite(t, raws[0], frame(ctrl))
	for ev = next(); ev.Type != EventMessage; ev = next() {
		if ev.Type == EventPing {
			t.Fatal("a version 1 client was pinged")
		}
	}
	if ev.Text != ctrl || ev.Data != nil {
		t.Errorf("message %+v, want the text in \"text\"", ev)
	}
	// Silent for many ping intervals: still there.
	time.Sleep(10 * interval) // time passing is the behaviour under test
	mustWrite(t, old, frame(whoRequest))
	for ev = next(); ev.Type != EventWho; ev = next() {
		if ev.Type == EventPing {
			t.Fatal("a version 1 client was pinged")
		}
	}
	for _, c := range raws {
		_ = c.Close()
	}
}

// TestClientTakesServersLimit: a chat client with the default payload limit
// receives a message larger than that from a server that accepts it: the
// server's welcome says how large its messages may be.
func TestClientTakesServersLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxPayload: 3 << 20}, Text, io.Discard)
	rec := newEventRec()
	listener, _ := dialExt(t, ts.addr, Hello{Name: "listener", Chat: true}, rec, ClientConfig{})
	talker, _ := dialExt(t, ts.addr, Hello{Name: "talker", Chat: true}, nil, ClientConfig{MaxPayload: 3 << 20})
	big := strings.Repeat("x", 2<<20)
	if err := talker.Send([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := talker.Close(); err != nil {
		t.Fatal(err)
	}
	rec.waitMsgs(t, 10*time.Second, "talker", 1)
	if got := chatMsgs(rec.snapshot(), "talker"); len(got) != 1 || got[0] != big {
		t.Errorf("the listener got %d messages, want the 2 MiB one", len(got))
	}
	if err := listener.Close(); err != nil {
		t.Errorf("listener: %v", err)
	}
}
