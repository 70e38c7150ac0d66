package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func startBus(t *testing.T, dir string, l Limits) *Bus {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	b, err := Start(Config{DataDir: dir, Site: "a1b2c3d4e5f60718", Limits: l, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// collector gathers the messages a subscription hands over.
type collector struct {
	mu   sync.Mutex
	msgs []Msg
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) add(m Msg) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (c *collector) waitN(t *testing.T, n int) []Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]Msg(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", len(got), n)
		}
	}
}

func TestRoomsSeparateAndOrdered(t *testing.T) {
	b := startBus(t, t.TempDir(), Limits{})
	x, y := newCollector(), newCollector()
	_, stopX, err := b.Subscribe(ctx(t), "x", x.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stopX()
	_, stopY, err := b.Subscribe(ctx(t), "y", y.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stopY()
	for i := range 100 {
		if err := b.Publish(ctx(t), &Msg{Room: "x", Name: "alice", Text: fmt.Appendf(nil, "x%d", i), Time: time.Now(), Session: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx(t), &Msg{Room: "y", Name: "bob", Text: []byte("to y"), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := x.waitN(t, 100)
	for i, m := range got {
		if string(m.Text) != fmt.Sprintf("x%d", i) || m.Room != "x" || m.Name != "alice" || m.Session != 7 || m.Site != b.Site() {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if gy := y.waitN(t, 1); len(gy) != 1 || string(gy[0].Text) != "to y" {
		t.Fatalf("room y got %+v", gy)
	}
	x.mu.Lock()
	n := len(x.msgs)
	x.mu.Unlock()
	if n != 100 {
		t.Fatalf("room x got %d messages, want 100 (room y's leaked in?)", n)
	}
}

func TestHistoryPagesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBus(t, dir, Limits{})
	for i := range 30 {
		if err := b.Publish(ctx(t), &Msg{Room: "h", Name: "a", Text: fmt.Appendf(nil, "m%d", i), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.Close()
	b = startBus(t, dir, Limits{})
	last, older, err := b.History(ctx(t), "h", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 10 || string(last[0].Text) != "m20" || string(last[9].Text) != "m29" || older != 20 {
		t.Fatalf("last 10 after restart: %d messages, %q..", len(last), texts(last))
	}
	older2, _, err := b.History(ctx(t), "h", 25, last[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if len(older2) != 20 || string(older2[0].Text) != "m0" || string(older2[19].Text) != "m19" {
		t.Fatalf("older: %q", texts(older2))
	}
}

func TestRoomBoundByCount(t *testing.T) {
	b := startBus(t, t.TempDir(), Limits{RoomMsgs: 5})
	for i := range 12 {
		if err := b.Publish(ctx(t), &Msg{Room: "c", Text: fmt.Appendf(nil, "m%d", i), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	<-b.js.PublishAsyncComplete()
	h, _, err := b.History(ctx(t), "c", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 5 || string(h[0].Text) != "m7" {
		t.Fatalf("kept %q, want m7..m11", texts(h))
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startBus(t, dir, Limits{})
	_, err := Start(Config{DataDir: dir, Site: "ffff"})
	var iu *InUseError
	if !errors.As(err, &iu) || iu.Dir != dir {
		t.Fatalf("second start on %s: %v, want InUseError", dir, err)
	}
}

func TestDMOnlineAndOffline(t *testing.T) {
	b := startBus(t, t.TempDir(), Limits{})
	const bob = "00ff"
	// Offline: it waits.
	ok, err := b.SendDM(ctx(t), bob, &Msg{Name: "alice", To: "bob", Text: []byte("while you were out"), Time: time.Now(), Session: 3})
	if err != nil || ok {
		t.Fatalf("offline send: delivered %v, %v", ok, err)
	}
	if n, _ := b.Waiting(ctx(t)); n != 1 {
		t.Fatalf("%d waiting, want 1", n)
	}
	delivered := make(chan Msg, 1)
	b.OnDelivered(func(m Msg) { delivered <- m })
	got := newCollector()
	off, err := b.Online(ctx(t), bob, func(m Msg) bool { got.add(m); return true })
	if err != nil {
		t.Fatal(err)
	}
	defer off()
	if m := got.waitN(t, 1)[0]; string(m.Text) != "while you were out" || m.Name != "alice" {
		t.Fatalf("delivered on connect: %+v", m)
	}
	select {
	case m := <-delivered:
		if m.Session != 3 {
			t.Fatalf("receipt for session %d, want 3", m.Session)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sender was not told")
	}
	// Online: at once.
	ok, err = b.SendDM(ctx(t), bob, &Msg{Name: "alice", Text: []byte("now"), Time: time.Now()})
	if err != nil || !ok {
		t.Fatalf("online send: delivered %v, %v", ok, err)
	}
	if m := got.waitN(t, 2)[1]; string(m.Text) != "now" {
		t.Fatalf("got %q", m.Text)
	}
	if n, _ := b.Waiting(ctx(t)); n != 0 {
		t.Fatalf("%d waiting after delivery, want 0", n)
	}
}

func TestDMBoundPerRecipient(t *testing.T) {
	b := startBus(t, t.TempDir(), Limits{DMMsgs: 3})
	for i := range 5 {
		if _, err := b.SendDM(ctx(t), "abcd", &Msg{Text: fmt.Appendf(nil, "d%d", i), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := b.Waiting(ctx(t)); n != 3 {
		t.Fatalf("%d waiting, want the bound 3", n)
	}
}

func TestRoomName(t *testing.T) {
	for in, want := range map[string]string{"general": "general", "#Alerts": "alerts", " build-1_x ": "build-1_x"} {
		if got, err := RoomName(in); err != nil || got != want {
			t.Errorf("RoomName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "x>", "*", "küche", "abcdefghijklmnopqrstuvwxyz0123456"} {
		if _, err := RoomName(bad); err == nil {
			t.Errorf("RoomName(%q) accepted", bad)
		}
	}
}

func texts(ms []Msg) []string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m.Text)
	}
	return s
}
