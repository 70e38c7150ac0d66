package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// eventRec records the events a client hands to OnEvent, so that a test can
// wait for them instead of sleeping.
type eventRec struct {
	mu     sync.Mutex
	evs    []Event
	counts map[[2]string]int // events by type and name
	cond   chan struct{}     // closed and replaced on every event
}

func newEventRec() *eventRec {
	return &eventRec{counts: map[[2]string]int{}, cond: make(chan struct{})}
}

func (r *eventRec) on(ev Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.counts[[2]string{ev.Type, ev.Name}]++
	close(r.cond)
	r.cond = make(chan struct{})
	r.mu.Unlock()
}

func (r *eventRec) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// wait waits until cond holds for the events so far and returns them. cond
// runs with the recorder locked and must not keep evs.
func (r *eventRec) wait(t *testing.T, timeout time.Duration, what string, cond func(evs []Event) bool) []Event {
	t.Helper()
	r.waitFor(t, timeout, what, func() bool { return cond(r.evs) })
	return r.snapshot()
}

// waitMsgs waits until n chat messages from name have arrived.
func (r *eventRec) waitMsgs(t *testing.T, timeout time.Duration, name string, n int) {
	t.Helper()
	r.waitFor(t, timeout, fmt.Sprintf("%d messages from %s", n, name), func() bool { return r.counts[[2]string{EventMessage, name}] >= n })
}

// count returns how many events of type typ with name name have arrived.
func (r *eventRec) count(typ, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[[2]string{typ, name}]
}

// waitFor waits until cond, called with r locked, holds.
func (r *eventRec) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ch := r.cond
		if cond() {
			r.mu.Unlock()
			return
		}
		n, last := len(r.evs), lastEvents(r.evs, 3)
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s; have %d events, the last %.300v", timeout, what, n, last)
		}
	}
}

func lastEvents(evs []Event, n int) []Event { return evs[max(0, len(evs)-n):] }

// hasEvent returns a condition: some event has type typ and name name.
func hasEvent(typ, name string) func([]Event) bool {
	return func(evs []Event) bool { return countEvents(evs, typ, name) > 0 }
}

func countEvents(evs []Event, typ, name string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && ev.Name == name {
			n++
		}
	}
	return n
}

// dialExt opens an extended session with h, recording its events in rec (if
// not nil), and returns the client and its local address (the peer the
// server prints).
func dialExt(t *testing.T, addr string, h Hello, rec *eventRec, cfg ClientConfig) (*Client, string) {
	t.Helper()
	cfg.Hello = &h
	if rec != nil {
		cfg.OnEvent = rec.on
	}
	cl, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatalf("Dial with hello %+v: %v", h, err)
	}
	t.Cleanup(func() { _ = cl.Abort() })
	if !cl.Extended() {
		t.Fatalf("Extended() = false after a welcome")
	}
	return cl, cl.nc.LocalAddr().String()
}

// TestExtPlainSessionSilent: a plain session never receives a byte, also
// when its first message only looks like a hello.
func TestExtPlainSessionSilent(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	for _, first := range []string{
		"hello",
		"!HELLO not json",
		`!HELLO {"v":0}`,
		`!HELLO {"v":-1,"chat":true}`,
		`!HELLO {"v":1`,
		`!HELLO{"v":1}`,
		`!hello {"v":1}`,
	} {
		t.Run(first, func(t *testing.T) {
			c := dialRaw(t, ts.addr)
			peer := c.LocalAddr().String()
			msgs := []string{first, "second", "!WHO", "!!x"}
			var wire []byte
			for _, m := range msgs {
				wire = append(wire, frame(m)...)
			}
			mustWrite(t, c, append(wire, frame(transport.Disconnect)...))
			// expectEOF fails if the server sends any byte before its close.
			expectEOF(t, c)
			var got []string
			for _, l := range ts.out.Lines() {
				if strings.HasPrefix(l, "["+peer+"]") {
					got = append(got, l)
				}
			}
			var want []string
			for _, m := range msgs {
				want = append(want, textLine(peer, m))
			}
			if !slices.Equal(got, want) {
				t.Errorf("output for %s:\n got %q\nwant %q", peer, got, want)
			}
		})
	}
	if n := ts.log.Count("extended session"); n != 0 {
		t.Errorf("%d sessions became extended; want none", n)
	}
}

// TestExtReceipts: every message of an extended session is acknowledged, and
// receipts arrive while the session runs, not only at its end.
func TestExtReceipts(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	rec := newEventRec()
	cl, peer := dialExt(t, ts.addr, Hello{}, rec, ClientConfig{})
	if w := cl.Welcome(); w.Type != EventWelcome || w.Name != "" || len(w.Names) != 0 {
		t.Errorf("Welcome() = %+v, want a bare welcome for a session without chat", w)
	}
	const total, batch = 20000, 500
	var want strings.Builder
	for i := range total {
		msg := fmt.Sprintf("message %05d", i)
		if err := cl.Send([]byte(msg)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		want.WriteString(textLine(peer, msg) + "\n")
		if (i+1)%batch == 0 {
			if err := cl.Flush(); err != nil {
				t.Fatalf("Flush after %d: %v", i+1, err)
			}
			if i+1 == batch {
				// No signal for a receipt but Acked itself: poll.
				sessiontest.WaitFor(t, 5*time.Second, "the first batch's receipt", func() bool { return cl.Acked() >= batch })
			}
		}
	}
	if a := cl.Acked(); a > total {
		t.Fatalf("Acked() = %d before Close, more than the %d sent", a, total)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if a := cl.Acked(); a != total {
		t.Errorf("Acked() = %d after Close, want %d", a, total)
	}
	if got := ts.out.String(); got != want.String() {
		t.Errorf("output: %d lines, want %d in order", strings.Count(got, "\n"), total)
	}
	if evs := rec.snapshot(); len(evs) != 0 {
		t.Errorf("a receipts-only session got events %v", lastEvents(evs, 5))
	}
	select {
	case <-cl.Done():
	default:
		t.Error("Done() not closed after Close")
	}
}

// TestExtBangMessages: in an extended session, messages that start with "!"
// (even "!DISCONNECT") are text, escaped on the wire, and do not end the
// session.
func TestExtBangMessages(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	rec := newEventRec()
	cl, peer := dialExt(t, ts.addr, Hello{}, rec, ClientConfig{})
	msgs := []string{"!who", transport.Disconnect, "!!x", "!WHO", "!", "!HELLO {\"v\":1}"}
	for _, m := range msgs {
		if err := cl.Send([]byte(m)); err != nil {
			t.Fatalf("Send %q: %v", m, err)
		}
	}
	if err := cl.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// The session is still open after "!DISCONNECT" as text: a later
	// message is delivered and acknowledged.
	sessiontest.WaitFor(t, 5*time.Second, "receipt of the ! messages", func() bool { return cl.Acked() >= int64(len(msgs)) })
	if len(ts.srv.Sessions()) != 1 {
		t.Fatalf("sessions %v, want the extended one still open", ts.srv.Sessions())
	}
	if err := cl.Send([]byte("after")); err != nil {
		t.Fatalf("Send after: %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var want []string
	for _, m := range append(msgs, "after") {
		want = append(want, textLine(peer, m))
	}
	if got := ts.out.Lines(); !slices.Equal(got, want) {
		t.Errorf("output:\n got %q\nwant %q", got, want)
	}
	if a := cl.Acked(); a != int64(len(want)) {
		t.Errorf("Acked() = %d, want %d", a, len(want))
	}
	if evs := rec.snapshot(); len(evs) != 0 {
		t.Errorf("got events %v, want none (no control frames were sent)", evs)
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"disconnect"`, fmt.Sprintf(`"messages":%d`, len(want)))
}

// TestExtControlFrames: raw control frames of an extended session: "!WHO"
// is answered, an unknown one gets an error event, neither reaches the
// output.
func TestExtControlFrames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	mustWrite(t, c, frame(`!HELLO {"v":1,"name":"raw","chat":true}`))
	fr := transport.NewReader(c, 0)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	next := func() Event {
		t.Helper()
		p, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading an event: %v", err)
		}
		var ev Event
		if err := json.Unmarshal(p, &ev); err != nil {
			t.Fatalf("event %q is not JSON: %v", p, err)
		}
		return ev
	}
	if ev := next(); ev.Type != EventWelcome || ev.Name != "raw" || !slices.Equal(ev.Names, []string{"raw"}) {
		t.Fatalf("first event %+v, want welcome for raw", ev)
	}
	mustWrite(t, c, frame(whoRequest))
	if ev := next(); ev.Type != EventWho || !slices.Equal(ev.Names, []string{"raw"}) {
		t.Fatalf("answer to !WHO: %+v", ev)
	}
	mustWrite(t, c, frame("!bogus"))
	if ev := next(); ev.Type != EventError || !strings.Contains(ev.Text, "!bogus") {
		t.Fatalf("answer to !bogus: %+v", ev)
	}
	mustWrite(t, c, append(frame("!!text"), frame(transport.Disconnect)...))
	if ev := next(); ev.Type != EventAck || ev.N != 1 {
		t.Fatalf("after one message: %+v, want ack 1", ev)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after !DISCONNECT: %v, want io.EOF", err)
	}
	if got, want := ts.out.Lines(), []string{textLine(peer, "!text")}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestExtReceiptsUnderShutdown: when a shutdown ends a streaming extended
// session, its last receipt still arrives before the reset, and it counts
// exactly the messages written to the output: Acked is exact however the
// client ends after the failure (Close, Abort, or waiting for Done).
func TestExtReceiptsUnderShutdown(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"Close", "Abort", "Done"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			for range 5 { // the race between the reset and the reader varies
				testReceiptsUnderShutdown(t, end)
				if t.Failed() {
					return
				}
			}
		})
	}
}

func testReceiptsUnderShutdown(t *testing.T, end string) {
	ts := startServer(t, Config{}, Text, nil)
	cl, peer := dialExt(t, ts.addr, Hello{}, nil, ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			if err := cl.Send([]byte(strconv.Itoa(i))); err != nil {
				errc <- err
				return
			}
			if i%64 == 0 {
				if err := cl.Flush(); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	ts.waitMessages(t, peer, 1000)
	if err := ts.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the client kept sending for 10s after the shutdown")
	}
	if !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Send/Flush after shutdown: %v, want ErrNotConfirmed", err)
	}
	switch end {
	case "Close":
		if err := cl.Close(); !errors.Is(err, ErrNotConfirmed) {
			t.Errorf("Close after shutdown: %v, want ErrNotConfirmed", err)
		}
	case "Abort":
		_ = cl.Abort()
	case "Done":
		select {
		case <-cl.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the client's reader did not end after the reset")
		}
	}
	acked := cl.Acked()
	lines := ts.out.Lines()
	if acked != int64(len(lines)) {
		t.Errorf("after %s: Acked() = %d, but %d messages are in the output", end, acked, len(lines))
	}
	for i, l := range lines {
		if want := textLine(peer, strconv.Itoa(i+1)); l != want {
			t.Fatalf("output line %d = %q, want %q: the output is not a prefix of what was sent", i, l, want)
		}
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"server shutting down"`)
}

// chatMsgs returns the texts of the msg events from name, and reports
// whether any came from self.
func chatMsgs(evs []Event, name string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == EventMessage && ev.Name == name {
			out = append(out, ev.Text)
		}
	}
	return out
}

func countMsgs(evs []Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == EventMessage {
			n++
		}
	}
	return n
}

// TestExtChatThree: three participants talk at once; each gets the other
// two's messages, in order, and not its own; joins, who and leaves.
func TestExtChatThree(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	names := []string{"a", "b", "c"}
	recs := map[string]*eventRec{}
	cls := map[string]*Client{}
	peers := map[string]string{}
	for i, name := range names {
		recs[name] = newEventRec()
		cls[name], peers[name] = dialExt(t, ts.addr, Hello{Name: name, Chat: true}, recs[name], ClientConfig{})
		w := cls[name].Welcome()
		if w.Name != name || !slices.Equal(w.Names, names[:i+1]) {
			t.Fatalf("welcome of %s: %+v, want name %s and names %v", name, w, name, names[:i+1])
		}
		// Everyone already there sees the join before the next one dials.
		for _, earlier := range names[:i] {
			recs[earlier].wait(t, 5*time.Second, earlier+" seeing "+name+" join", hasEvent(EventJoin, name))
		}
	}

	const each = 200
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			cl := cls[name]
			for i := range each {
				if err := cl.Send(fmt.Appendf(nil, "%s %03d", name, i)); err != nil {
					t.Errorf("%s: Send %d: %v", name, i, err)
					return
				}
				if i%50 == 49 {
					if err := cl.Flush(); err != nil {
						t.Errorf("%s: Flush: %v", name, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, name := range names {
		evs := recs[name].wait(t, 10*time.Second, name+" receiving the others' messages", func(evs []Event) bool {
			return countMsgs(evs) >= 2*each
		})
		if n := countMsgs(evs); n != 2*each {
			t.Errorf("%s received %d messages, want %d", name, n, 2*each)
		}
		if own := chatMsgs(evs, name); len(own) != 0 {
			t.Errorf("%s received %d of its own messages", name, len(own))
		}
		for _, from := range names {
			if from == name {
				continue
			}
			got := chatMsgs(evs, from)
			for i, text := range got {
				if want := fmt.Sprintf("%s %03d", from, i); text != want {
					t.Fatalf("%s: message %d from %s is %q, want %q (order per sender)", name, i, from, text, want)
				}
			}
			if len(got) != each {
				t.Errorf("%s received %d messages from %s, want %d", name, len(got), from, each)
			}
		}
		for _, ev := range evs {
			if ev.Type == EventMessage && ev.Time.IsZero() {
				t.Errorf("%s: message without a time: %+v", name, ev)
				break
			}
			if ev.Type == EventError {
				t.Errorf("%s: error event %+v", name, ev)
			}
		}
	}
	// Joins: a saw b and c, b saw c, c saw none; nobody saw itself.
	for i, name := range names {
		evs := recs[name].snapshot()
		for j, other := range names {
			n := countEvents(evs, EventJoin, other)
			if want := map[bool]int{true: 1, false: 0}[j > i]; n != want {
				t.Errorf("%s saw %d joins of %s, want %d", name, n, other, want)
			}
		}
	}

	if err := cls["a"].Who(); err != nil {
		t.Fatalf("Who: %v", err)
	}
	evs := recs["a"].wait(t, 5*time.Second, "the answer to Who", func(evs []Event) bool { return countEvents(evs, EventWho, "") > 0 })
	for _, ev := range evs {
		if ev.Type == EventWho && !slices.Equal(ev.Names, names) {
			t.Errorf("who: %v, want %v", ev.Names, names)
		}
	}

	if err := cls["c"].Close(); err != nil {
		t.Fatalf("c: Close: %v", err)
	}
	if a := cls["c"].Acked(); a != each {
		t.Errorf("c: Acked() = %d, want %d", a, each)
	}
	for _, name := range []string{"a", "b"} {
		recs[name].wait(t, 5*time.Second, name+" seeing c leave", hasEvent(EventLeave, "c"))
	}
	for _, name := range []string{"a", "b"} {
		if err := cls[name].Close(); err != nil {
			t.Fatalf("%s: Close: %v", name, err)
		}
	}
	// Every message is in the output too, once.
	lines := ts.out.Lines()
	if len(lines) != 3*each {
		t.Errorf("output has %d lines, want %d", len(lines), 3*each)
	}
	for _, name := range names {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "["+peers[name]+"] : "+name+" ") {
				n++
			}
		}
		if n != each {
			t.Errorf("output has %d lines of %s, want %d", n, name, each)
		}
	}
}

// TestExtChatJSONName: in JSON output, a chat message carries its sender's
// chat name.
func TestExtChatJSONName(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, JSON, nil)
	cl, _ := dialExt(t, ts.addr, Hello{Name: "zoë", Chat: true}, nil, ClientConfig{})
	if err := cl.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	var l struct{ Name, Text string }
	if err := json.Unmarshal([]byte(ts.out.String()), &l); err != nil {
		t.Fatalf("output %q: %v", ts.out.String(), err)
	}
	if l.Name != "zoë" || l.Text != "hi" {
		t.Errorf("output %q: name %q text %q, want zoë and hi", ts.out.String(), l.Name, l.Text)
	}
}

// TestExtDuplicateNames: a chat name is unique in the room, case-insensitively.
func TestExtDuplicateNames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	var got []string
	for _, c := range []struct{ ask, want string }{{"sam", "sam"}, {"sam", "sam (2)"}, {"Sam", "Sam (3)"}} {
		ask, want := c.ask, c.want
		cl, _ := dialExt(t, ts.addr, Hello{Name: ask, Chat: true}, nil, ClientConfig{})
		if w := cl.Welcome(); w.Name != want {
			t.Errorf("asking for %q: given %q, want %q", ask, w.Name, want)
		}
		got = append(got, want)
		slices.Sort(got)
		if w := cl.Welcome(); !slices.Equal(w.Names, got) {
			t.Errorf("welcome names %q, want %q", w.Names, got)
		}
	}
}

// TestExtStalledParticipant: a chat participant that never reads is dropped
// when its send queue overflows, and the others keep talking.
func TestExtStalledParticipant(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{SendQueue: 256 << 10}, Text, io.Discard)

	stalled := dialRaw(t, ts.addr)
	stalledPeer := stalled.LocalAddr().String()
	mustWrite(t, stalled, frame(`!HELLO {"v":1,"name":"stalled","chat":true}`))
	ts.log.Wait(t, 5*time.Second, 1, "extended session", stalledPeer)

	recA, recB := newEventRec(), newEventRec()
	a, _ := dialExt(t, ts.addr, Hello{Name: "a", Chat: true}, recA, ClientConfig{})
	if !slices.Contains(a.Welcome().Names, "stalled") {
		t.Fatalf("a's welcome %+v does not list the stalled participant", a.Welcome())
	}
	b, _ := dialExt(t, ts.addr, Hello{Name: "b", Chat: true}, recB, ClientConfig{})

	// Each normal participant sends 1 KiB messages until the other has
	// seen the stalled one leave (at least minimum, at most maximum), so
	// the stalled one's socket buffers and queue (a few MB) must fill.
	const minimum, maximum, size = 2000, 100000, 1024
	// The senders pace themselves: at most window messages on their way to
	// the other normal participant, fewer than its queue holds, so that
	// only the stalled participant can overflow.
	const window = 16
	start := time.Now()
	var wg sync.WaitGroup
	var sent [2]int
	send := func(cl *Client, name string, to *eventRec, sent *int) {
		defer wg.Done()
		msg := make([]byte, size)
		for i := 0; i < minimum || to.count(EventLeave, "stalled") == 0; i++ {
			if i == maximum {
				t.Errorf("%s: the stalled participant is still there after %d messages", name, i)
				break
			}
			copy(msg, fmt.Sprintf("%s %06d ", name, i))
			if err := cl.Send(msg); err != nil {
				t.Errorf("%s: Send %d: %v", name, i, err)
				return
			}
			*sent = i + 1
			if i%window == window-1 {
				if err := cl.Flush(); err != nil {
					t.Errorf("%s: Flush: %v", name, err)
					return
				}
				// Promptly: every window reaches the other within 10s.
				to.waitMsgs(t, 10*time.Second, name, i+1-window)
			}
		}
		if err := cl.Flush(); err != nil {
			t.Errorf("%s: Flush: %v", name, err)
		}
	}
	wg.Add(2)
	go send(a, "a", recB, &sent[0])
	go send(b, "b", recA, &sent[1])
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, r := range []struct {
		rec  *eventRec
		from string
		sent int
	}{{recB, "a", sent[0]}, {recA, "b", sent[1]}} {
		r.rec.waitMsgs(t, 10*time.Second, r.from, r.sent)
		got := chatMsgs(r.rec.snapshot(), r.from)
		for i, text := range got {
			if want := fmt.Sprintf("%s %06d ", r.from, i); !strings.HasPrefix(text, want) || len(text) != size {
				t.Fatalf("message %d from %s: %.20q (%d bytes), want prefix %q and %d bytes", i, r.from, text, len(text), want, size)
			}
		}
		if len(got) != r.sent {
			t.Errorf("%d messages from %s relayed, want all %d sent", len(got), r.from, r.sent)
		}
	}
	elapsed := time.Since(start)
	t.Logf("relayed %d + %d messages of %d bytes in %v", sent[0], sent[1], size, elapsed)
	if elapsed > time.Minute {
		t.Errorf("relay took %v: the stalled participant slowed the others", elapsed)
	}

	ts.log.Wait(t, 10*time.Second, 1, "session closed", stalledPeer, `"reason":"`+reasonSlowReader+`"`)
	for _, s := range ts.srv.Sessions() {
		if s.Peer == stalledPeer {
			t.Errorf("the stalled participant is still a session: %+v", s)
		}
	}
	if len(ts.srv.Sessions()) != 2 {
		t.Errorf("sessions %+v, want a and b", ts.srv.Sessions())
	}
	for _, r := range []*eventRec{recA, recB} {
		r.wait(t, 5*time.Second, "the stalled participant's leave", hasEvent(EventLeave, "stalled"))
	}
	// The stalled socket holds what the server sent before it gave up,
	// then the reset.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, stalled)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("stalled socket after %d bytes: %v, want ECONNRESET", n, err)
	}
	for _, cl := range []*Client{a, b} {
		if err := cl.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// TestExtNoExtension: a hello to a server that never answers fails with
// ErrNoExtension within the confirm timeout.
func TestExtNoExtension(t *testing.T) {
	t.Parallel()
	first := make(chan string, 1)
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) {
		// A plain server: reads, never writes.
		r := transport.NewReader(c, 0)
		p, err := r.ReadFrame()
		if err != nil {
			first <- "error: " + err.Error()
			return
		}
		first <- string(p)
		_, _ = io.Copy(io.Discard, c)
	})
	const timeout = 300 * time.Millisecond
	start := time.Now()
	cl, err := Dial(context.Background(), addr, ClientConfig{ConfirmTimeout: timeout, Hello: &Hello{Name: "x", Chat: true}})
	elapsed := time.Since(start)
	if err == nil {
		cl.Abort()
		t.Fatal("Dial succeeded against a server that never answers")
	}
	if !errors.Is(err, ErrNoExtension) {
		t.Fatalf("Dial: %v, want ErrNoExtension", err)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("Dial failed after %v, want about %v", elapsed, timeout)
	}
	var h Hello
	if p := <-first; !strings.HasPrefix(p, HelloPrefix) || json.Unmarshal([]byte(strings.TrimPrefix(p, HelloPrefix)), &h) != nil ||
		h != (Hello{V: ProtocolVersion, Name: "x", Chat: true}) {
		t.Errorf("the server received %q, want the hello", p)
	}
}

// TestExtNoExtensionServerCloses: a server that closes after the hello is
// no extended server either.
func TestExtNoExtensionServerCloses(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) {
		_, _ = transport.NewReader(c, 0).ReadFrame()
	})
	_, err := Dial(context.Background(), addr, ClientConfig{ConfirmTimeout: 5 * time.Second, Hello: &Hello{}})
	if !errors.Is(err, ErrNoExtension) {
		t.Fatalf("Dial: %v, want ErrNoExtension", err)
	}
}

// TestExtIdleTimeout: chat participants may listen in silence; other
// extended sessions keep the idle timeout.
func TestExtIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	ts := startServer(t, Config{IdleTimeout: idle}, Text, nil)
	recListener := newEventRec()
	listener, _ := dialExt(t, ts.addr, Hello{Name: "listener", Chat: true}, recListener, ClientConfig{})
	receipts, _ := dialExt(t, ts.addr, Hello{}, nil, ClientConfig{})
	start := time.Now()

	select {
	case <-receipts.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("an idle receipts-only session was not closed")
	}
	checkWithin(t, "idle receipts-only session closed", time.Since(start), idle)
	if err := receipts.Close(); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("Close of the timed-out session: %v, want ErrNotConfirmed", err)
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"idle timeout"`)

	// The behaviour under test is time passing: stay silent for 5 idle
	// timeouts.
	time.Sleep(5*idle - time.Since(start))
	select {
	case <-listener.Done():
		t.Fatal("the silent chat participant was disconnected")
	default:
	}
	if len(ts.srv.Sessions()) != 1 {
		t.Fatalf("sessions %+v, want the chat participant only", ts.srv.Sessions())
	}
	talker, _ := dialExt(t, ts.addr, Hello{Name: "talker", Chat: true}, nil, ClientConfig{})
	if err := talker.Send([]byte("still there?")); err != nil {
		t.Fatal(err)
	}
	if err := talker.Close(); err != nil {
		t.Fatal(err)
	}
	evs := recListener.wait(t, 5*time.Second, "the message after the silence", func(evs []Event) bool {
		return len(chatMsgs(evs, "talker")) > 0
	})
	if got := chatMsgs(evs, "talker"); !slices.Equal(got, []string{"still there?"}) {
		t.Errorf("listener got %q", got)
	}
	if err := listener.Close(); err != nil {
		t.Errorf("Close of the chat participant: %v", err)
	}
	if n := ts.log.Count("session closed", `"reason":"idle timeout"`); n != 1 {
		t.Errorf("%d sessions closed for idleness, want 1", n)
	}
}

// TestExtLargeEventAfterQuiet: a frame of 64 KiB or more reaches a chat
// participant even when nothing was sent to it for longer than the send
// timeout. (The writer used to set its write deadline only before Flush;
// Buffer's own write of a large frame then ran into the deadline of a
// Flush long past, failed at once, and the writer discarded everything
// after it without ending the session.)
func TestExtLargeEventAfterQuiet(t *testing.T) {
	t.Parallel()
	const sendTimeout = 300 * time.Millisecond
	ts := startServer(t, Config{SendTimeout: sendTimeout}, Text, io.Discard)
	rec := newEventRec()
	a, _ := dialExt(t, ts.addr, Hello{Name: "a", Chat: true}, nil, ClientConfig{})
	b, _ := dialExt(t, ts.addr, Hello{Name: "b", Chat: true}, rec, ClientConfig{})
	// The behaviour under test is time passing: b's writer last wrote (the
	// welcome, or a's join) before this.
	time.Sleep(sendTimeout + 500*time.Millisecond)
	big := strings.Repeat("x", 100<<10)
	for _, m := range []string{big, "small"} {
		if err := a.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	rec.waitMsgs(t, 5*time.Second, "a", 2)
	if got := chatMsgs(rec.snapshot(), "a"); len(got) != 2 || got[0] != big || got[1] != "small" {
		t.Errorf("b got %d messages from a, want the big one and then \"small\"", len(got))
	}
	if err := b.Close(); err != nil {
		t.Errorf("b: Close: %v", err)
	}
	if a := b.Acked(); a != 0 {
		t.Errorf("b: Acked() = %d, want 0", a)
	}
}

// TestControlFrameKeepsFlushing: a message followed by a control frame in
// the same read is written out (and confirmed) without waiting for more
// input, which in a chat may not come for hours.
func TestControlFrameKeepsFlushing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, frame(`!HELLO {"v":1,"name":"paster","chat":true}`))
	ts.log.Wait(t, 5*time.Second, 1, "extended session")
	mustWrite(t, c, append(frame("hello there"), frame("!WHO")...))
	sessiontest.WaitFor(t, 5*time.Second, "the message before !WHO to be written out", func() bool {
		return strings.Contains(ts.out.String(), " : hello there\n")
	})
}

// TestBigEventKeepsListeners: one legitimate message whose event is larger
// than a listener's whole send queue (JSON escaping grows control bytes six
// times) reaches the listener instead of getting it dropped.
func TestBigEventKeepsListeners(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{SendQueue: 64 << 10}, Text, nil)
	recL := newEventRec()
	_, _ = dialExt(t, ts.addr, Hello{Name: "listener", Chat: true}, recL, ClientConfig{})
	talker, _ := dialExt(t, ts.addr, Hello{Name: "talker", Chat: true}, nil, ClientConfig{})
	recL.wait(t, 5*time.Second, "the talker's join", hasEvent(EventJoin, "talker"))

	for _, text := range []string{strings.Repeat("<&>", 30000), strings.Repeat("\x01", 50000)} {
		if err := talker.Send([]byte(text)); err != nil {
			t.Fatal(err)
		}
		if err := talker.Flush(); err != nil {
			t.Fatal(err)
		}
		recL.wait(t, 5*time.Second, "the big message", func(evs []Event) bool {
			for _, e := range evs {
				if e.Type == EventMessage && e.Text == text {
					return true
				}
			}
			return false
		})
	}
	if n := ts.log.Count("send queue full"); n != 0 {
		t.Errorf("%d participants dropped for one big message", n)
	}
}

// TestChatNameCapped: a chat name is cut to maxNameLen bytes, on a rune
// boundary.
func TestChatNameCapped(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	long := strings.Repeat("é", 100) // 200 bytes
	cl, _ := dialExt(t, ts.addr, Hello{Name: long, Chat: true}, nil, ClientConfig{})
	if got := cl.Welcome().Name; got != strings.Repeat("é", maxNameLen/2) {
		t.Errorf("name %q (%d bytes), want %d bytes of it", got, len(got), maxNameLen)
	}
}

// fakeExtServer welcomes an extended session and then does what act says.
