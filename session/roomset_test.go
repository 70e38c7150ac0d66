package session

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/session/trust"
)

// startBus starts a message bus on dir for a test server.
func startBus(t *testing.T, dir string) *rooms.Bus {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	b, err := rooms.Start(rooms.Config{DataDir: dir, Site: "0123456789abcdef", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func chatHello(name, room string) Hello { return Hello{Name: name, Chat: true, Room: room} }

// msgTexts returns the texts of the chat messages among evs.
func msgTexts(evs []Event, history bool) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == EventMessage && ev.History == history {
			out = append(out, ev.Name+":"+ev.Text)
		}
	}
	return out
}

func TestRoomsKeepTheirMessagesApart(t *testing.T) {
	t.Parallel()
	out := &sessiontest.SyncBuffer{}
	ts := startServer(t, Config{Bus: startBus(t, t.TempDir())}, JSON, out)
	ra, rb, rc := newEventRec(), newEventRec(), newEventRec()
	a, _ := dialExt(t, ts.addr, chatHello("a", "x"), ra, ClientConfig{})
	_, _ = dialExt(t, ts.addr, chatHello("b", "x"), rb, ClientConfig{})
	c, _ := dialExt(t, ts.addr, chatHello("c", "y"), rc, ClientConfig{})
	if w := a.Welcome(); w.Room != "x" {
		t.Fatalf("welcome %+v, want room x", w)
	}
	ra.wait(t, 5*time.Second, "b's join", hasEvent(EventJoin, "b"))
	if err := c.Send([]byte("in y")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send([]byte("in x")); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	rb.waitMsgs(t, 5*time.Second, "a", 1)
	ts.waitMessages(t, c.nc.LocalAddr().String(), 1)
	// c's message went through the bus before a's: had it leaked into
	// room x, b would have it by now.
	if got := msgTexts(rb.snapshot(), false); strings.Join(got, "|") != "a:in x" {
		t.Fatalf("b in room x saw %q, want only a's message", got)
	}
	if got := msgTexts(rc.snapshot(), false); len(got) != 0 {
		t.Fatalf("c in room y saw %q", got)
	}
	if ev := rb.snapshot(); countEvents(ev, EventJoin, "c") > 0 {
		t.Fatal("b saw c join, who is in another room")
	}
	if !strings.Contains(out.String(), `"name":"a","room":"x","text":"in x"`) || !strings.Contains(out.String(), `"name":"c","room":"y","text":"in y"`) {
		t.Fatalf("output %q lacks the rooms", out.String())
	}
	// Rooms and their member counts.
	if err := c.Rooms(); err != nil {
		t.Fatal(err)
	}
	evs := rc.wait(t, 5*time.Second, "rooms", func(evs []Event) bool { return countEvents(evs, EventRooms, "") > 0 })
	for _, ev := range evs {
		if ev.Type == EventRooms && fmt.Sprint(ev.Rooms) != "[{x 2} {y 1}]" {
			t.Fatalf("rooms %v, want x with 2 and y with 1", ev.Rooms)
		}
	}
	// Moving c into x: b sees it join, and its messages.
	if err := c.Join("X"); err != nil {
		t.Fatal(err)
	}
	rc.wait(t, 5*time.Second, "the welcome into x", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == EventWelcome && ev.Room == "x" {
				return true
			}
		}
		return false
	})
	if err := c.Send([]byte("now in x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	rb.waitMsgs(t, 5*time.Second, "c", 1)
}

// TestRoomHistoryOnJoinAndPaging: a participant joining a room is shown its
// last messages, marked as history, and pages further back with !HISTORY.
func TestRoomHistoryOnJoinAndPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Bus: startBus(t, t.TempDir()), History: 2}, Text, nil)
	// A watcher in the room: what it was relayed is stored.
	rw := newEventRec()
	dialExt(t, ts.addr, chatHello("w", "h"), rw, ClientConfig{})
	a, _ := dialExt(t, ts.addr, chatHello("a", "h"), nil, ClientConfig{})
	for i := range 5 {
		if err := a.Send(fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	rw.waitMsgs(t, 5*time.Second, "a", 5)
	if got := msgTexts(rw.snapshot(), true); len(got) != 0 {
		t.Fatalf("the watcher, who joined an empty room, was shown history %q", got)
	}
	rd := newEventRec()
	d, _ := dialExt(t, ts.addr, chatHello("d", "h"), rd, ClientConfig{})
	evs := rd.wait(t, 5*time.Second, "the history event", func(evs []Event) bool { return countEvents(evs, EventHistory, "") > 0 })
	if got := strings.Join(msgTexts(evs, true), "|"); got != "a:m3|a:m4" {
		t.Fatalf("history on join %q, want a:m3|a:m4", got)
	}
	if last := evs[len(evs)-1]; last.Type != EventHistory || last.N != 2 || last.More != 3 {
		t.Fatalf("last event %+v, want history n 2, more 3", last)
	}
	if err := d.History(10); err != nil {
		t.Fatal(err)
	}
	evs = rd.wait(t, 5*time.Second, "the second page", func(evs []Event) bool { return countEvents(evs, EventHistory, "") == 2 })
	if got := strings.Join(msgTexts(evs, true), "|"); got != "a:m3|a:m4|a:m0|a:m1|a:m2" {
		t.Fatalf("history %q, want m3 m4 on join then m0 m1 m2", got)
	}
	if last := evs[len(evs)-1]; last.Type != EventHistory || last.N != 3 || last.More != 0 {
		t.Fatalf("last event %+v, want history n 3, more 0", last)
	}
	// Live messages after the history are not marked.
	if err := a.Send([]byte("live")); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	rd.waitMsgs(t, 5*time.Second, "a", 6)
	if got := msgTexts(rd.snapshot(), false); strings.Join(got, "|") != "a:live" {
		t.Fatalf("live messages %q", got)
	}
}

func TestRoomPostWithoutJoining(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Bus: startBus(t, t.TempDir())}, Text, nil)
	rw := newEventRec()
	dialExt(t, ts.addr, chatHello("w", "alerts"), rw, ClientConfig{})
	s, _ := dialExt(t, ts.addr, Hello{Name: "logger", Room: "alerts"}, nil, ClientConfig{})
	if err := s.Send([]byte("disk full")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rw.waitMsgs(t, 5*time.Second, "logger", 1)
	if countEvents(rw.snapshot(), EventJoin, "logger") > 0 {
		t.Fatal("a poster was announced as a member")
	}
}

// keyed is a chat client with a key of its own.
func keyed(t *testing.T, p *tlsPair) *tls.Config {
	t.Helper()
	id, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return trust.ClientConfig(&cert, trust.Expect(p.server.Fingerprint))
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	p := newTLSPair(t)
	owners, err := trust.NameOwnersIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, p.serverConfig(Config{Bus: startBus(t, t.TempDir()), ChatNames: owners}), Text, nil)
	aliceTLS, bobTLS, carolTLS := keyed(t, p), keyed(t, p), keyed(t, p)
	ra, rb, rc := newEventRec(), newEventRec(), newEventRec()
	alice, _ := dialExt(t, ts.addr, chatHello("alice", ""), ra, ClientConfig{TLS: aliceTLS})
	bob, _ := dialExt(t, ts.addr, chatHello("bob", "elsewhere"), rb, ClientConfig{TLS: bobTLS})
	dialExt(t, ts.addr, chatHello("carol", ""), rc, ClientConfig{TLS: carolTLS})

	// Online, in another room.
	if err := alice.DirectMessage(DirectMessage{To: "Bob", Text: "psst", ID: "1"}); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, 5*time.Second, "the direct message", hasEvent(EventDM, "alice"))
	ra.wait(t, 5*time.Second, "delivered", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == EventDelivered && ev.ID == "1" && ev.Name == "bob" {
				return true
			}
		}
		return false
	})
	// Offline: queued, then delivered when bob is back.
	_ = bob.Abort()
	sessiontest.WaitFor(t, 5*time.Second, "bob to leave", func() bool { r, _ := ts.srv.room("elsewhere"); return r.count() == 0 })
	if err := alice.DirectMessage(DirectMessage{To: "bob", Text: "while you were out", ID: "2"}); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, 5*time.Second, "queued", hasEvent(EventQueued, "bob"))
	rb2 := newEventRec()
	dialExt(t, ts.addr, chatHello("bob", ""), rb2, ClientConfig{TLS: bobTLS})
	evs := rb2.wait(t, 5*time.Second, "the waiting message", hasEvent(EventDM, "alice"))
	for _, ev := range evs {
		if ev.Type == EventDM && ev.Text != "while you were out" {
			t.Fatalf("bob got %+v", ev)
		}
	}
	ra.wait(t, 5*time.Second, "delivered after reconnect", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == EventDelivered && ev.ID == "2" {
				return true
			}
		}
		return false
	})
	// carol, in alice's room all along, saw neither.
	for _, ev := range rc.snapshot() {
		if ev.Type == EventDM || strings.Contains(ev.Text, "psst") || strings.Contains(ev.Text, "while you") {
			t.Fatalf("carol saw %+v", ev)
		}
	}
	// Nobody of that name.
	if err := alice.DirectMessage(DirectMessage{To: "dave", Text: "x", ID: "3"}); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, 5*time.Second, "an error", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == EventError && ev.ID == "3" && strings.Contains(ev.Text, "nobody") {
				return true
			}
		}
		return false
	})
}

// TestRoomsBounded: past Config.MaxRooms, a new room is refused with an
// error naming --max-rooms; a chat asking for one on joining gets the
// default room, which is always there.
func TestRoomsBounded(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Bus: startBus(t, t.TempDir()), MaxRooms: 2}, Text, nil)
	ra := newEventRec()
	a, _ := dialExt(t, ts.addr, chatHello("a", "one"), ra, ClientConfig{})
	dialExt(t, ts.addr, chatHello("b", "two"), nil, ClientConfig{})
	if err := a.Join("three"); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, 5*time.Second, "the refusal", func(evs []Event) bool {
		for _, ev := range evs {
			if ev.Type == EventError && strings.Contains(ev.Text, "--max-rooms") {
				return true
			}
		}
		return false
	})
	rc := newEventRec()
	c, _ := dialExt(t, ts.addr, chatHello("c", "four"), rc, ClientConfig{})
	if w := c.Welcome(); w.Room != rooms.DefaultRoom {
		t.Fatalf("welcome %+v, want the default room", w)
	}
	if n := len(ts.srv.Rooms()); n != 3 {
		t.Fatalf("%d rooms, want the bound 2 and the default room", n)
	}
}
