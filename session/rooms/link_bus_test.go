package rooms

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/trust"
)

// linkedBus is a Bus with links, and what its room subscription got.
type linkedBus struct {
	*Bus
	links *Links
	log   *logLines
	mu    sync.Mutex
	got   []Msg
	more  chan struct{}
}

func startLinkedBus(t *testing.T, id *trust.Identity, cfg LinkConfig) *linkedBus {
	t.Helper()
	lb := &linkedBus{log: newLogLines(), more: make(chan struct{}, 1)}
	zl := zerolog.New(io.MultiWriter(lb.log, zerolog.NewTestWriter(t))).With().Str("site", Site(id.Fingerprint)).Logger()
	cfg.Identity, cfg.Log, cfg.ReconnectInterval = id, &zl, 100*time.Millisecond
	if cfg.CheckRemote == nil {
		cfg.CheckRemote = func(string, trust.Fingerprint) error { return nil }
	}
	links, err := NewLinks(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Config{DataDir: t.TempDir(), Site: Site(id.Fingerprint), ConfigureServer: links.ConfigureServer, Log: &zl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.StartLinks(context.Background(), links); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(links.Close)
	lb.Bus, lb.links = b, links
	return lb
}

// subscribe follows room as the relay does: one subscription, from now.
func (lb *linkedBus) subscribe(t *testing.T, room string) {
	t.Helper()
	_, stop, err := lb.Subscribe(context.Background(), room, func(m Msg) {
		lb.mu.Lock()
		lb.got = append(lb.got, m)
		lb.mu.Unlock()
		select {
		case lb.more <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// waitTexts waits until the subscription has n messages and returns their
// texts.
func (lb *linkedBus) waitTexts(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.After(d)
	for {
		lb.mu.Lock()
		var texts []string
		for _, m := range lb.got {
			texts = append(texts, string(m.Text))
		}
		lb.mu.Unlock()
		if len(texts) >= n {
			return texts
		}
		select {
		case <-lb.more:
		case <-deadline:
			t.Fatalf("site %s: %d messages after %v, want %d: %q", lb.Site(), len(texts), d, n, texts)
		}
	}
}

func (lb *linkedBus) say(t *testing.T, room, text string) {
	t.Helper()
	if err := lb.Publish(context.Background(), &Msg{Room: room, Name: text[:1], Text: []byte(text), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestLinkedBusesHealExactlyOnce: what the relay of each of two linked
// servers is handed, live and after an outage past nats-server's source
// health check, is every message of the room exactly once, in each
// sender's order; and a late subscriber's history is the whole room.
func TestLinkedBusesHealExactlyOnce(t *testing.T) {
	ida, idb := newIdentity(t), newIdentity(t)
	a := startLinkedBus(t, ida, LinkConfig{Listen: "127.0.0.1:0", Allow: allowOnly(t, idb)})
	p := newCutProxy(t, a.links.ListenAddr())
	b := startLinkedBus(t, idb, LinkConfig{Remotes: []string{p.Addr()},
		CheckRemote: func(_ string, fp trust.Fingerprint) error { return trust.Expect(ida.Fingerprint)(fp) }})
	for _, s := range []*linkedBus{a, b} {
		s.log.waitLine(t, 10*time.Second, "rooms in step")
	}
	a.subscribe(t, "general")
	b.subscribe(t, "general")
	var want []string
	for i := range 3 {
		a.say(t, "general", fmt.Sprintf("a-%d", i))
		b.say(t, "general", fmt.Sprintf("b-%d", i))
		want = append(want, fmt.Sprintf("a-%d", i), fmt.Sprintf("b-%d", i))
	}
	a.waitTexts(t, len(want), 10*time.Second)
	b.waitTexts(t, len(want), 10*time.Second)

	p.Cut()
	a.log.waitLine(t, 10*time.Second, `"link down"`)
	b.log.waitLine(t, 10*time.Second, `"link down"`)
	for i := 3; i < 30; i++ {
		a.say(t, "general", fmt.Sprintf("a-%d", i))
		b.say(t, "general", fmt.Sprintf("b-%d", i))
		want = append(want, fmt.Sprintf("a-%d", i), fmt.Sprintf("b-%d", i))
	}
	waitSourceStalled(t, a.js, "general", 40*time.Second)
	waitSourceStalled(t, b.js, "general", 40*time.Second)
	p.Restore()
	healed := time.Now()
	ga := a.waitTexts(t, len(want), 15*time.Second)
	gb := b.waitTexts(t, len(want), 15*time.Second)
	t.Logf("each relay had all %d messages %v after the link was restored", len(want), time.Since(healed).Round(time.Millisecond))
	checkExactlyOnce(t, "A's relay", ga, want)
	checkExactlyOnce(t, "B's relay", gb, want)

	// A late joiner on either side: the history is the whole room.
	for _, s := range []*linkedBus{a, b} {
		h, _, err := s.History(context.Background(), "general", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, m := range h {
			texts = append(texts, string(m.Text))
		}
		checkExactlyOnce(t, "history at "+s.Site(), texts, want)
	}
}

// TestLinkedBusesDeliverWaitingDM: a direct message sent on site A while
// the link is down, to a key online on site B, waits on A and is
// delivered to B's session when the link comes back.
func TestLinkedBusesDeliverWaitingDM(t *testing.T) {
	ida, idb := newIdentity(t), newIdentity(t)
	a := startLinkedBus(t, ida, LinkConfig{Listen: "127.0.0.1:0", Allow: allowOnly(t, idb)})
	p := newCutProxy(t, a.links.ListenAddr())
	b := startLinkedBus(t, idb, LinkConfig{Remotes: []string{p.Addr()}})
	for _, s := range []*linkedBus{a, b} {
		s.log.waitLine(t, 10*time.Second, "rooms in step")
	}
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	got := make(chan Msg, 4)
	off, err := b.Online(context.Background(), key, func(m Msg) bool { got <- m; return true })
	if err != nil {
		t.Fatal(err)
	}
	defer off()

	p.Cut()
	a.log.waitLine(t, 10*time.Second, `"link down"`)
	ok, err := a.SendDM(context.Background(), key, &Msg{Name: "alice", Text: []byte("while cut"), Time: time.Now()})
	if err != nil || ok {
		t.Fatalf("direct message while the link is down: delivered %v, %v; want it to wait", ok, err)
	}
	p.Restore()
	select {
	case m := <-got:
		if string(m.Text) != "while cut" {
			t.Fatalf("got %q", m.Text)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the direct message that waited on A was not delivered to B within 15 s of the link coming back")
	}
}
