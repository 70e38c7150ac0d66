package session

// Tests of the defences against a hostile neighbour (issue 9): the memory
// budget, the per-host session cap, the minimum rate inside a frame, chat
// liveness, batched joins and the client's bound on incoming frames. The
// end-to-end attacks on the built binary are in cmd/lanmsg/hostile_test.go.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// TestBudgetShedsLargestFirst: past the limit, the budget sheds the
// accounts holding the most, largest first, and only as many as it takes.
func TestBudgetShedsLargestFirst(t *testing.T) {
	b := newBudget(1000)
	var shed []string
	accts := map[string]*account{}
	for _, name := range []string{"small", "big", "medium"} {
		a := &account{b: b}
		a.onShed = func() { shed = append(shed, name); a.setReading(0) }
		accts[name] = a
	}
	b.victims = func(yield func(*account) bool) {
		for _, a := range accts {
			if !yield(a) {
				return
			}
		}
	}
	accts["small"].setReading(100)
	accts["medium"].setReading(300)
	accts["big"].setReading(500)
	if len(shed) != 0 || b.used.Load() != 900 {
		t.Fatalf("under the limit: shed %v, used %d", shed, b.used.Load())
	}
	accts["small"].setBatch(150) // 1050 > 1000: shedding big (500) is enough
	if !slices.Equal(shed, []string{"big"}) {
		t.Fatalf("shed %v, want [big]", shed)
	}
	if got := b.used.Load(); got != 550 {
		t.Errorf("used %d after shedding, want 550", got)
	}
	if got := b.shed.Load(); got != 1 {
		t.Errorf("shed count %d, want 1", got)
	}
}

// silentMembers joins n chat members to ts's room over synchronous pipes
// that nobody reads, and returns the pipes' client ends.
func silentMembers(t *testing.T, ts *testServer, n int) []net.Conn {
	t.Helper()
	var pipes []net.Conn
	for i := range n {
		srvSide, cliSide := net.Pipe()
		ts.srv.start(srvSide)
		go func() { _, _ = cliSide.Write(frame(fmt.Sprintf(`!HELLO {"v":2,"name":"l%d","chat":true}`, i))) }()
		pipes = append(pipes, cliSide)
	}
	sessiontest.WaitFor(t, 5*time.Second, "the members to join", func() bool {
		r, _ := ts.srv.room(rooms.DefaultRoom)
		return r.count() == n
	})
	return pipes
}

// TestSharedFrameCountedOnce: a chat event queued for many members is one
// buffer, counted once in the budget, and in full in each member's account.
func TestSharedFrameCountedOnce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{SendQueue: 16 << 20}, Text, io.Discard)
	// Members on synchronous pipes that nobody reads: everything sent to
	// them stays queued or in flight.
	const listeners = 20
	pipes := silentMembers(t, ts, listeners)
	before := ts.srv.Budget().Used
	sender, _ := dialExt(t, ts.addr, Hello{Name: "sender", Chat: true}, nil, ClientConfig{})
	msg := strings.Repeat("m", 200<<10)
	if err := sender.Send([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := sender.Close(); err != nil {
		t.Fatal(err)
	}
	used := ts.srv.Budget().Used - before
	t.Logf("a %d-byte message to %d members that do not read: budget use grew by %d bytes", len(msg), listeners, used)
	if used > int64(2*len(msg)) {
		t.Errorf("budget use grew by %d bytes for a %d-byte event to %d members: counted per member, not once", used, len(msg), listeners)
	}
	if used < int64(len(msg)) {
		t.Errorf("budget use grew by only %d bytes: the queued event is not counted", used)
	}
	ts.srv.mu.Lock()
	for _, c := range ts.srv.sessions {
		if h := c.acct.held.Load(); h < int64(len(msg)) {
			t.Errorf("session %d holds %d bytes in its account, want at least the event's %d", c.id, h, len(msg))
		}
	}
	ts.srv.mu.Unlock()
	for _, c := range pipes {
		_ = c.Close()
	}
	ts.waitSessions(t, 0)
	sessiontest.WaitFor(t, 5*time.Second, "the budget to be released", func() bool { return ts.srv.Budget().Used == 0 })
}

// TestBudgetShedsNonReaders: chat members that do not read, and a sender of
// large messages: past the budget the members holding the most are reset,
// with a warning, and a valid client still gets through. Every byte comes
// back once they are gone.
func TestBudgetShedsNonReaders(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	cfg := Config{MaxPayload: maxPayload, MemoryBudget: 10*maxPayload + 2<<20, SendQueue: 16 << 20, SendTimeout: time.Minute}
	ts := startServer(t, cfg, Text, io.Discard)
	// Members on synchronous pipes that nobody reads.
	const listeners = 10
	raws := silentMembers(t, ts, listeners)
	sender, _ := dialExt(t, ts.addr, Hello{Name: "sender", Chat: true}, nil, ClientConfig{MaxPayload: maxPayload})
	ctrl := bytes.Repeat([]byte{1}, maxPayload) // the worst case for escaping
	for range 40 {
		if err := sender.Send(ctrl); err != nil {
			t.Fatal(err)
		}
	}
	if err := sender.Close(); err != nil {
		t.Fatal(err)
	}
	ts.log.Wait(t, 10*time.Second, 1, "memory budget exhausted")
	st := ts.srv.Budget()
	t.Logf("40 messages of %d control bytes to %d members that do not read: %d sessions shed, budget %d of %d bytes in use", maxPayload, listeners, st.Shed, st.Used, st.Limit)
	if st.Shed == 0 {
		t.Fatalf("nothing shed: %+v", st)
	}
	// Another client is served meanwhile.
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("still served")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("a valid client during the attack: %v", err)
	}
	for _, c := range raws {
		_ = c.Close()
	}
	ts.waitSessions(t, 0)
	sessiontest.WaitFor(t, 5*time.Second, "the budget to be released", func() bool { return ts.srv.Budget().Used == 0 })
}

// gateWriter blocks every Write until open is closed.
type gateWriter struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (w *gateWriter) Write(p []byte) (int, error) {
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestBudgetShedsWaitingOutput: with the output blocked, sessions that wait
// to write large formatted batches count against the budget; past it, the
// ones waiting are shed (reset, not confirmed), and the rest are written
// once the output moves.
func TestBudgetShedsWaitingOutput(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	cfg := Config{MaxPayload: maxPayload, MemoryBudget: 10*maxPayload + 2<<20}
	out := &gateWriter{open: make(chan struct{})}
	ts := startServer(t, cfg, JSON, out)
	ctrl := bytes.Repeat([]byte{1}, maxPayload) // 6 bytes each in JSON
	const senders = 12
	errs := make(chan error, senders)
	for range senders {
		go func() {
			cl, err := Dial(context.Background(), ts.addr, ClientConfig{MaxPayload: maxPayload})
			if err != nil {
				errs <- err
				return
			}
			if err := cl.Send(ctrl); err != nil {
				errs <- err
				return
			}
			errs <- cl.Close()
		}()
	}
	ts.log.Wait(t, 10*time.Second, 1, "memory budget exhausted")
	// Once the shed sessions have let go, what is held fits the budget,
	// with the output still blocked.
	var st BudgetStats
	sessiontest.WaitFor(t, 5*time.Second, "the budget to fit with the output blocked", func() bool {
		st = ts.srv.Budget()
		return st.Used <= st.Limit
	})
	t.Logf("%d senders of %d control bytes with the output blocked: %d shed, then %d of %d bytes in use", senders, maxPayload, st.Shed, st.Used, st.Limit)
	close(out.open)
	var confirmed, refused int
	for range senders {
		if err := <-errs; err == nil {
			confirmed++
		} else if errors.Is(err, ErrNotConfirmed) {
			t.Logf("not confirmed: %v", err)
			refused++
		} else {
			t.Errorf("sender: %v", err)
		}
	}
	t.Logf("%d confirmed, %d not", confirmed, refused)
	if refused == 0 || confirmed == 0 {
		t.Errorf("%d confirmed and %d not: want some shed and the rest written", confirmed, refused)
	}
	ts.waitSessions(t, 0)
	sessiontest.WaitFor(t, 5*time.Second, "the budget to be released", func() bool { return ts.srv.Budget().Used == 0 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if n := strings.Count(out.buf.String(), "\n"); n != confirmed {
		t.Errorf("%d lines written, want one per confirmed sender (%d)", n, confirmed)
	}
}

// TestMessageEventCompact: a message of control bytes or invalid UTF-8 goes
// as base64, so no event is much larger than its payload, and the client
// gets the exact bytes back.
func TestMessageEventCompact(t *testing.T) {
	for _, tc := range []struct {
		name string
		text []byte
		data bool
	}{
		{"plain", []byte("hello, world"), false},
		{"unicode", []byte("grüße, 世界 🎉"), false},
		{"some escapes", []byte("a\tb\nc \"quoted\" back\\slash"), false},
		{"control bytes", bytes.Repeat([]byte{1, 2, 3}, 1000), true},
		{"invalid UTF-8", bytes.Repeat([]byte{0xff}, 1000), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := messageEvent("alice", tc.text, time.Now())
			if (ev.Data != nil) != tc.data {
				t.Errorf("data=%v, want %v", ev.Data != nil, tc.data)
			}
			enc := encodeEvent(ev)
			if max := base64.StdEncoding.EncodedLen(len(tc.text)) + 200; len(enc) > max {
				t.Errorf("event of %d bytes for %d bytes of text: over %d", len(enc), len(tc.text), max)
			}
			var got Event
			if err := json.Unmarshal(enc, &got); err != nil {
				t.Fatal(err)
			}
			text := []byte(got.Text)
			if got.Data != nil {
				text = got.Data
			}
			if utf8.Valid(tc.text) && !bytes.Equal(text, tc.text) || got.Data != nil && !bytes.Equal(text, tc.text) {
				t.Errorf("decoded %q, want %q", text, tc.text)
			}
		})
	}
}

// TestJSONStringLen checks jsonStringLen against encoding/json on random
// byte strings rich in what needs escaping.
func TestJSONStringLen(t *testing.T) {
	alphabet := []byte("a\x00\x01\x1f\"\\\n\r\t\b\f\x7f\xff\xc3\xa9\xe2\x80\xa8\xe2\x80\xa9<>&")
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		s := make([]byte, r.IntN(40))
		for i := range s {
			s[i] = alphabet[r.IntN(len(alphabet))]
		}
		b := encodeEvent(Event{Text: string(s)})
		// {"t":"","text":"..."}
		want := len(b) - len(`{"t":"","text":""}`)
		if len(s) == 0 {
			want = 0
		}
		if got := jsonStringLen(s); got != want {
			t.Fatalf("jsonStringLen(%q) = %d, encoding/json wrote %d (%s)", s, got, want, b)
		}
	}
}

// TestMaxSessionsPerHost: one address cannot hold more than its share; a
// connection from another address still gets in, and the slots come back.
func TestMaxSessionsPerHost(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxSessionsPerHost: 3}, Text, nil)
	var held []*net.TCPConn
	for range 3 {
		held = append(held, dialRaw(t, ts.addr))
	}
	ts.waitSessions(t, 3)
	// The reset may come before the dial returns.
	if extra, err := net.Dial("tcp", ts.addr); err == nil {
		if d := expectReset(t, extra, 5*time.Second); d > time.Second {
			t.Errorf("the 4th connection from one address was reset after %v, want at once", d)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the 4th connection: %v, want a reset", err)
	}
	ts.log.Wait(t, 5*time.Second, 1, "too many sessions from this address", "--max-sessions-per-host")

	// Another address: 127.0.0.2 is loopback too.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatalf("dial from 127.0.0.2: %v", err)
	}
	cl := NewClient(nc, ClientConfig{})
	if err := cl.Send([]byte("from another host")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("a client from another address while the first is at its cap: %v", err)
	}
	if got := ts.srv.Hosts()["127.0.0.1"]; got != 3 {
		t.Errorf("Hosts()[127.0.0.1] = %d, want 3", got)
	}
	for _, c := range held {
		_ = c.Close()
	}
	ts.waitSessions(t, 0)
	if h := ts.srv.Hosts(); len(h) != 0 {
		t.Errorf("Hosts() = %v after every session ended, want empty", h)
	}
	cl2, err := Dial(context.Background(), ts.addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl2.Close(); err != nil {
		t.Errorf("after the slots came back: %v", err)
	}
}

// TestMinRate: a frame that trickles in under the minimum rate is reset at
// the end of a window, however long the read timeout; one that keeps the
// rate is delivered.
func TestMinRate(t *testing.T) {
	t.Parallel()
	const window = time.Second
	ts := startServer(t, Config{MinRate: 1000, MinRateWindow: window, ReadTimeout: time.Hour, HeaderTimeout: time.Hour}, Text, nil)

	// 100 bytes a second: a tenth of the minimum.
	slow := dialRaw(t, ts.addr)
	mustWrite(t, slow, header(10000))
	stop := make(chan struct{})
	defer close(stop)
	writeErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				writeErr <- nil
				return
			case <-time.After(10 * time.Millisecond):
				if _, err := slow.Write([]byte("x")); err != nil {
					writeErr <- err
					return
				}
			}
		}
	}()
	took := expectResetWhileWriting(t, slow, 5*time.Second, writeErr)
	t.Logf("a frame trickling at 100 B/s under --min-rate 1000 B/s with a %v window was reset after %v", window, took)
	if took > 3*window {
		t.Errorf("reset after %v, want within two windows of %v", took, window)
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", reasonTooSlow)

	// About 40,000 bytes a second, 400 bytes every 10 ms, for a second:
	// delivered, with a wide margin for a busy machine.
	ok := dialRaw(t, ts.addr)
	payload := strings.Repeat("y", 40000)
	mustWrite(t, ok, header(len(payload)))
	for i := 0; i < len(payload); i += 400 {
		time.Sleep(10 * time.Millisecond) // the pace is the behaviour under test
		mustWrite(t, ok, []byte(payload[i:i+400]))
	}
	mustWrite(t, ok, frame(transport.Disconnect))
	expectEOF(t, ok)
	if got := ts.out.Lines(); !slices.Contains(got, textLine(ok.LocalAddr().String(), payload)) {
		t.Errorf("the frame sent at 40,000 B/s was not delivered")
	}
}

// TestChatLiveness: a chat participant that neither answers the server's
// pings nor sends anything is dropped after two intervals; lanmsg's client
// answers by itself, so a silent listener stays.
func TestChatLiveness(t *testing.T) {
	t.Parallel()
	const interval = 400 * time.Millisecond // long enough for the client's pong under the race detector
	ts := startServer(t, Config{PingInterval: interval}, Text, nil)
	listener, _ := dialExt(t, ts.addr, Hello{Name: "listener", Chat: true}, nil, ClientConfig{})

	mute := dialRaw(t, ts.addr)
	mustWrite(t, mute, frame(`!HELLO {"v":2,"name":"mute","chat":true}`))
	start := time.Now()
	pings := 0
	fr := transport.NewReader(mute, 0)
	_ = mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		p, err := fr.ReadFrame()
		if err != nil {
			break // the server dropped it
		}
		var ev Event
		if json.Unmarshal(p, &ev) == nil && ev.Type == EventPing {
			pings++
		}
	}
	took := time.Since(start)
	t.Logf("a participant that reads but never answers: %d pings, dropped after %v (interval %v)", pings, took, interval)
	if pings == 0 || took > 5*interval {
		t.Errorf("dropped after %v with %d pings, want pings and a drop within about two intervals", took, pings)
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", reasonNoPong)

	// The lanmsg listener, silent the whole time, is still there.
	time.Sleep(5 * interval) // time passing is the behaviour under test
	select {
	case <-listener.Done():
		t.Fatalf("the silent lanmsg listener was dropped: %v", listener.Err())
	default:
	}
	if err := listener.Close(); err != nil {
		t.Errorf("listener: %v", err)
	}
}

// TestJoinsBatched: a burst of joins reaches a member as a few events, each
// listing many names, not one event per join; every name arrives exactly
// once.
func TestJoinsBatched(t *testing.T) {
	t.Parallel()
	const joiners = 200
	ts := startServer(t, Config{MaxSessionsPerHost: joiners + 1}, Text, io.Discard)
	rec := newEventRec()
	first, _ := dialExt(t, ts.addr, Hello{Name: "first", Chat: true}, rec, ClientConfig{})
	var raws []net.Conn
	for i := range joiners {
		c := dialRaw(t, ts.addr)
		mustWrite(t, c, frame(fmt.Sprintf(`!HELLO {"v":1,"name":"j%03d","chat":true}`, i)))
		raws = append(raws, c)
	}
	seen := map[string]int{}
	events := 0
	evs := rec.wait(t, 10*time.Second, "every join", func(evs []Event) bool {
		n := map[string]bool{}
		for _, ev := range evs {
			if ev.Type == EventJoin {
				for _, name := range append(slices.Clone(ev.Names), ev.Name) {
					if name != "" {
						n[name] = true
					}
				}
			}
		}
		return len(n) == joiners
	})
	for _, ev := range evs {
		if ev.Type != EventJoin {
			continue
		}
		events++
		for _, name := range append(slices.Clone(ev.Names), ev.Name) {
			if name != "" {
				seen[name]++
			}
		}
	}
	t.Logf("%d joins reached a member as %d events", joiners, events)
	if events > joiners/10 {
		t.Errorf("%d joins reached a member as %d events, want at most %d", joiners, events, joiners/10)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s announced %d times", name, n)
		}
	}
	for _, c := range raws {
		_ = c.Close()
	}
	rec.wait(t, 10*time.Second, "every leave", func(evs []Event) bool {
		n := 0
		for _, ev := range evs {
			if ev.Type == EventLeave {
				n += len(ev.Names)
				if ev.Name != "" {
					n++
				}
			}
		}
		return n == joiners
	})
	if err := first.Close(); err != nil {
		t.Error(err)
	}
}

// TestClientRefusesOversizeEvent: a server that sends a frame larger than a
// lanmsg server ever sends ends the session with ErrOversizeEvent, before
// the client buffers any of it.
func TestClientRefusesOversizeEvent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	const maxPayload = 1 << 20
	claim := MaxEventSize(maxPayload) + 1
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = nc.Close() }()
		fr := transport.NewReader(nc, 0)
		if _, err := fr.ReadFrame(); err != nil { // the hello
			return
		}
		_, _ = nc.Write(transport.AppendFrame(nil, encodeEvent(Event{Type: EventWelcome, Name: "x"})))
		// A header claiming more than a lanmsg server sends, and a start
		// of it; the rest never comes.
		_, _ = nc.Write(transport.AppendHeader(nil, claim))
		_, _ = nc.Write(bytes.Repeat([]byte("z"), 64<<10))
		_, _ = io.Copy(io.Discard, nc)
	}()
	cl, err := Dial(context.Background(), ln.Addr().String(), ClientConfig{MaxPayload: maxPayload, Hello: &Hello{Name: "c", Chat: true}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client kept reading a frame over the limit")
	}
	err = cl.Err()
	if !errors.Is(err, ErrOversizeEvent) || !strings.Contains(err.Error(), fmt.Sprint(claim)) {
		t.Errorf("Err() = %v, want ErrOversizeEvent naming %d bytes", err, claim)
	}
	if err := cl.Close(); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("Close() = %v, want ErrNotConfirmed", err)
	}
}
