package rooms

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/trust"
)

// cutProxy forwards TCP connections to target until cut: then it closes
// every connection it carries and refuses new ones until restored. It is
// the link's network, taken down and brought back.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.loop()
	t.Cleanup(func() { _ = ln.Close(); p.Cut() })
	return p
}

func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

func (p *cutProxy) loop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close(); _ = c.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = u.Close(); _ = c.Close() }()
	}
}

// Cut closes the connections carried and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Restore lets connections through again.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// logLines is a zerolog writer that keeps the lines and signals each.
type logLines struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newLogLines() *logLines { return &logLines{ch: make(chan string, 4096)} }

func (l *logLines) Write(p []byte) (int, error) {
	s := string(bytes.TrimSpace(p))
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	select {
	case l.ch <- s:
	default:
	}
	return len(p), nil
}

// waitLine waits for a line that holds every one of parts.
func (l *logLines) waitLine(t *testing.T, d time.Duration, parts ...string) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case s := <-l.ch:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(s, p)
			}
			if ok {
				return s
			}
		case <-timer.C:
			t.Fatalf("no log line with %q within %v", parts, d)
		}
	}
}

// testSite is one lanmsg server's NATS side: an embedded server with
// JetStream in the site's domain, its links, and room streams made the way
// the rooms' Bus makes them (stream ROOM_<room>, own subject
// lanmsg.room.<room>.<site>, one source per linked site).
type testSite struct {
	t     *testing.T
	id    *trust.Identity
	site  string
	ns    *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	links *Links
	log   *logLines

	mu    sync.Mutex
	sites map[string]bool
}

func newIdentity(t *testing.T) *trust.Identity {
	t.Helper()
	id, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func startSite(t *testing.T, id *trust.Identity, cfg LinkConfig) *testSite {
	t.Helper()
	s := &testSite{t: t, id: id, site: Site(id.Fingerprint), log: newLogLines(), sites: map[string]bool{}}
	zl := zerolog.New(io.MultiWriter(s.log, zerolog.NewTestWriter(t))).With().Str("site", s.site).Logger()
	cfg.Identity, cfg.Log = id, &zl
	if cfg.CheckRemote == nil {
		cfg.CheckRemote = func(string, trust.Fingerprint) error { return nil }
	}
	cfg.ReconnectInterval = 100 * time.Millisecond
	links, err := NewLinks(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := &server.Options{DontListen: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()}
	if err := links.ConfigureServer(o); err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded server not ready")
	}
	t.Cleanup(ns.Shutdown)
	s.ns = ns
	s.nc, err = nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.nc.Close)
	s.js, _ = jetstream.New(s.nc)
	s.links = links
	if err := links.Start(ns, s.nc, LinkHooks{AddSite: s.addSite, Rooms: s.rooms, EnsureRoom: s.ensureRoom}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(links.Close)
	return s
}

func (s *testSite) streamConfig(room string) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{Name: roomStreamPrefix + room, Subjects: []string{"lanmsg.room." + room + "." + s.site},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}
	for site := range s.sites {
		cfg.Sources = append(cfg.Sources, &jetstream.StreamSource{Name: roomStreamPrefix + room,
			FilterSubject: "lanmsg.room." + room + "." + site, Domain: site})
	}
	return cfg
}

func (s *testSite) addSite(site string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sites[site] {
		return nil
	}
	s.sites[site] = true
	ctx := context.Background()
	for n := range s.js.StreamNames(ctx).Name() {
		if room, ok := strings.CutPrefix(n, roomStreamPrefix); ok {
			if _, err := s.js.UpdateStream(ctx, s.streamConfig(room)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *testSite) rooms() ([]string, error) {
	var r []string
	for n := range s.js.StreamNames(context.Background()).Name() {
		if room, ok := strings.CutPrefix(n, roomStreamPrefix); ok {
			r = append(r, room)
		}
	}
	return r, nil
}

func (s *testSite) ensureRoom(room string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	if _, err := s.js.Stream(ctx, roomStreamPrefix+room); err == nil {
		return nil
	}
	_, err := s.js.CreateStream(ctx, s.streamConfig(room))
	return err
}

// say posts text into room from this site, with its message id.
func (s *testSite) say(room, text string) {
	s.t.Helper()
	if err := s.ensureRoom(room); err != nil {
		s.t.Fatal(err)
	}
	_, err := s.js.Publish(context.Background(), "lanmsg.room."+room+"."+s.site, []byte(text),
		jetstream.WithMsgID(s.site+"."+text))
	if err != nil {
		s.t.Fatalf("site %s: say %q: %v", s.site, text, err)
	}
}

// history is every message the site's stream of room holds, in order.
func (s *testSite) history(room string) []string {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, roomStreamPrefix+room)
	if err != nil {
		return nil
	}
	info := st.CachedInfo()
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out = append(out, string(m.Data))
	}
	return out
}

// waitHistory reads room's stream on s, from its start, with an ordered
// consumer (as the relay does) until it has n messages, and returns them.
func (s *testSite) waitHistory(room string, n int, d time.Duration) []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var st jetstream.Stream
	var err error
	for st == nil {
		if st, err = s.js.Stream(ctx, roomStreamPrefix+room); err != nil {
			st = nil
			select {
			case <-ctx.Done():
				s.t.Fatalf("site %s: no stream for room %s within %v: %v", s.site, room, d, err)
			case <-time.After(20 * time.Millisecond): // the stream's creation has no signal here
			}
		}
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		s.t.Fatal(err)
	}
	var got []string
	for len(got) < n {
		m, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			s.t.Fatalf("site %s: room %s has %d messages after %v, want %d: %q", s.site, room, len(got), d, n, got)
		}
		got = append(got, string(m.Data()))
	}
	return got
}

// sourceStalled is how long nats-server lets a source be silent before it
// finds it stalled and tries to set it up again, failing while the link is
// down: 10 s (sourceHealthCheckInterval), and one check more.
const sourceStalled = 11 * time.Second

// waitSourceFailed waits until the stream of room on s reports its source
// from the other site failing or stalled.
func (s *testSite) waitSourceFailed(room string, d time.Duration) {
	s.t.Helper()
	waitSourceStalled(s.t, s.js, room, d)
}

// waitSourceStalled waits until room's stream (through js) reports its
// source failing or stalled. Stream info has no signal for it: it is
// polled.
func waitSourceStalled(t *testing.T, js jetstream.JetStream, room string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(d)
	for {
		st, err := js.Stream(ctx, roomStreamPrefix+room)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range st.CachedInfo().Sources {
			if src.Error != nil || src.Active > sourceStalled {
				t.Logf("room %s: its source from %s silent for %v (error %v)", room, src.External.APIPrefix, src.Active.Round(time.Millisecond), src.Error)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s's sources did not stall within %v of the cut: %+v", room, d, st.CachedInfo().Sources)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLink waits for the site's log to say a link went up (or down).
func (s *testSite) waitLink(up bool, d time.Duration) {
	s.t.Helper()
	msg := map[bool]string{true: `"link up"`, false: `"link down"`}[up]
	s.log.waitLine(s.t, d, msg)
}

// allowOnly writes an allow file with the keys of ids.
func allowOnly(t *testing.T, ids ...*trust.Identity) *trust.AllowList {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintln(&b, id.Fingerprint.String())
	}
	path := t.TempDir() + "/link-allow"
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := trust.LoadAllowList(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// linkedPair starts site A accepting links from B's key and site B linked
// to A through a proxy that can be cut.
func linkedPair(t *testing.T) (a, b *testSite, p *cutProxy) {
	t.Helper()
	ida, idb := newIdentity(t), newIdentity(t)
	a = startSite(t, ida, LinkConfig{Listen: "127.0.0.1:0", Allow: allowOnly(t, idb)})
	p = newCutProxy(t, a.links.ListenAddr())
	b = startSite(t, idb, LinkConfig{Remotes: []string{p.Addr()},
		CheckRemote: func(_ string, fp trust.Fingerprint) error { return trust.Expect(ida.Fingerprint)(fp) }})
	a.waitLink(true, 10*time.Second)
	b.waitLink(true, 10*time.Second)
	a.log.waitLine(t, 10*time.Second, "rooms in step")
	b.log.waitLine(t, 10*time.Second, "rooms in step")
	return a, b, p
}

// checkExactlyOnce checks that got holds each of want exactly once and,
// for each sender (the text's prefix before "-"), in the order it said them.
func checkExactlyOnce(t *testing.T, where string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("%s: %q arrived %d times, want once", where, w, seen[w])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d messages, want %d: %q", where, len(got), len(want), got)
	}
	last := map[string]int{}
	for _, g := range got {
		sender, n, _ := strings.Cut(g, "-")
		var i int
		_, _ = fmt.Sscan(n, &i)
		if l, ok := last[sender]; ok && i <= l {
			t.Errorf("%s: %s's messages out of order: %q", where, sender, got)
			return
		}
		last[sender] = i
	}
}

func TestLinkRoomSpansSites(t *testing.T) {
	a, b, _ := linkedPair(t)
	// A room started on A is kept on B too: a late joiner on B sees
	// what was said on A before anyone on B was in it, and the reverse.
	for i := range 3 {
		a.say("lobby", fmt.Sprintf("a-%d", i))
	}
	hb := b.waitHistory("lobby", 3, 15*time.Second)
	for i := range 3 {
		b.say("lobby", fmt.Sprintf("b-%d", i))
	}
	want := []string{"a-0", "a-1", "a-2", "b-0", "b-1", "b-2"}
	checkExactlyOnce(t, "A", a.waitHistory("lobby", 6, 15*time.Second), want)
	checkExactlyOnce(t, "B", b.waitHistory("lobby", 6, 15*time.Second), want)
	_ = hb
}

func TestLinkOutageHealsExactlyOnce(t *testing.T) {
	a, b, p := linkedPair(t)
	a.say("x", "a-0")
	b.say("x", "b-0")
	a.waitHistory("x", 2, 15*time.Second)
	b.waitHistory("x", 2, 15*time.Second)

	p.Cut()
	a.waitLink(false, 10*time.Second)
	b.waitLink(false, 10*time.Second)
	// Both sides keep working: each stores what its own users say, and
	// a room started during the outage is a room too.
	want := []string{"a-0", "b-0"}
	for i := 1; i <= 20; i++ {
		a.say("x", fmt.Sprintf("a-%d", i))
		b.say("x", fmt.Sprintf("b-%d", i))
		want = append(want, fmt.Sprintf("a-%d", i), fmt.Sprintf("b-%d", i))
	}
	a.say("new", "a-1")
	if h := a.waitHistory("x", 22, 5*time.Second); len(h) != 22 {
		t.Fatalf("A during the outage: %q", h)
	}
	if h := b.history("x"); len(h) != 22 {
		t.Fatalf("B during the outage has %d messages, want its own 21 and A's first: %q", len(h), h)
	}

	// Keep the link down until each side's source from the other has
	// failed (nats-server's health check finds it stalled after 10 s):
	// from then on nats-server retries it only after growing back-offs,
	// and healing is up to the links.
	a.waitSourceFailed("x", 40*time.Second)
	b.waitSourceFailed("x", 40*time.Second)
	p.Restore()
	healed := time.Now()
	ha := a.waitHistory("x", len(want), 15*time.Second)
	hb := b.waitHistory("x", len(want), 15*time.Second)
	hn := b.waitHistory("new", 1, 15*time.Second)
	t.Logf("both sides whole %v after the link was restored", time.Since(healed).Round(time.Millisecond))
	checkExactlyOnce(t, "A", a.history("x"), want)
	checkExactlyOnce(t, "B", b.history("x"), want)
	checkExactlyOnce(t, "B, room started during the outage", b.history("new"), []string{"a-1"})
	_, _, _ = ha, hb, hn
}

func TestLinkUnknownKeyRefused(t *testing.T) {
	ida, idb, idc := newIdentity(t), newIdentity(t), newIdentity(t)
	a := startSite(t, ida, LinkConfig{Listen: "127.0.0.1:0", Allow: allowOnly(t, idb)})
	c := startSite(t, idc, LinkConfig{Remotes: []string{a.links.ListenAddr()}})
	// A refuses C's key in the handshake; C tries again each interval and
	// is refused each time.
	line := a.log.waitLine(t, 10*time.Second, "link refused", idc.Fingerprint.String())
	a.log.waitLine(t, 10*time.Second, "link refused", idc.Fingerprint.String(), `"refused_since_last_log"`)
	t.Logf("A: %s", line)
	if n := a.ns.NumLeafNodes(); n != 0 {
		t.Errorf("A has %d leaf-node connections with an unknown key knocking, want 0", n)
	}
	if n := c.ns.NumLeafNodes(); n != 0 {
		t.Errorf("C has %d leaf-node connections, want 0", n)
	}
	for _, l := range append(a.links.State(), c.links.State()...) {
		if l.Up {
			t.Errorf("a link is up: %+v", l)
		}
	}
}

func TestLinkPinnedKeyChecked(t *testing.T) {
	ida, idb, other := newIdentity(t), newIdentity(t), newIdentity(t)
	a := startSite(t, ida, LinkConfig{Listen: "127.0.0.1:0", Allow: allowOnly(t, idb)})
	// B has another key pinned for A's address: A's key is refused,
	// even though A would let B in.
	b := startSite(t, idb, LinkConfig{Remotes: []string{a.links.ListenAddr()},
		CheckRemote: func(_ string, fp trust.Fingerprint) error { return trust.Expect(other.Fingerprint)(fp) }})
	b.log.waitLine(t, 10*time.Second, "link refused", ida.Fingerprint.String())
	if n := a.ns.NumLeafNodes() + b.ns.NumLeafNodes(); n != 0 {
		t.Errorf("%d leaf-node connections with the pinned key refused, want 0", n)
	}
	st := b.links.State()
	if len(st) != 1 || st[0].Up || !strings.Contains(st[0].Error, "not the expected") {
		t.Errorf("B's link state %+v, want one link, down, with the key mismatch", st)
	}
}

// TestLinksCloseWithoutStart: links whose bus never started (serve stopping
// early) close at once.
func TestLinksCloseWithoutStart(t *testing.T) {
	l, err := NewLinks(LinkConfig{Remotes: []string{"127.0.0.1:7422"}, Identity: newIdentity(t),
		CheckRemote: func(string, trust.Fingerprint) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of links never started did not return")
	}
	var none *Links
	none.Close() // nil links, as serve has without link flags
	if err := none.Start(nil, nil, LinkHooks{}); err != nil || none.State() != nil || none.ListenAddr() != "" {
		t.Errorf("nil links: Start %v, State %v", err, none.State())
	}
}
