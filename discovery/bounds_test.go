package discovery

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The browser's bounds against a hostile responder, tested by feeding handle() hand-built
// packets and reading followUpQuery's queries: no network.

func response(t *testing.T, rrs ...dns.RR) *packet {
	t.Helper()
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: rrs, Compress: true}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePacket(b)
	if err != nil || p.skipped > 0 || p.trailErr != nil {
		t.Fatalf("parse: %v skipped=%d trail=%v", err, p.skipped, p.trailErr)
	}
	return p
}

func ptrRR(inst string) dns.RR {
	return &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, 120), Ptr: instanceFQDN(inst)}
}

func srvRR(inst, host string, port uint16) dns.RR {
	return &dns.SRV{Hdr: hdr(instanceFQDN(inst), dns.TypeSRV, 0, 120), Port: port, Target: host}
}

func txtRR(inst string) dns.RR {
	return &dns.TXT{Hdr: hdr(instanceFQDN(inst), dns.TypeTXT, 0, 120), Txt: []string{"v=1", "id=" + inst}}
}

func aRR(host string, last byte) dns.RR {
	return &dns.A{Hdr: hdr(host, dns.TypeA, 0, 120), A: net.IPv4(10, 0, 0, last)}
}

// checkIndexes verifies the browser's bookkeeping against a walk over all instances.
func checkIndexes(t *testing.T, b *browser) {
	t.Helper()
	if len(b.insts) > maxInstances {
		t.Fatalf("%d instances tracked, cap %d", len(b.insts), maxInstances)
	}
	stale, hosted, asking := 0, 0, 0
	for k, s := range b.insts {
		if s.key != k || s.gone {
			t.Fatalf("instance %q: key %q gone %v", k, s.key, s.gone)
		}
		if s.gaveUp && !s.reported {
			stale++
		}
		if !s.reported && s.haveSRV {
			hosted++
			if !b.byHost[strings.ToLower(s.host)][s] {
				t.Fatalf("instance %q not indexed under host %q", k, s.host)
			}
		}
		if !s.nextAsk.IsZero() {
			asking++
			if !b.asking[s] {
				t.Fatalf("instance %q scheduled but not in asking", k)
			}
		}
	}
	n := 0
	for _, set := range b.byHost {
		n += len(set)
	}
	if stale != b.stale || n != hosted || asking != len(b.asking) {
		t.Fatalf("stale %d (counted %d), byHost %d (want %d), asking %d (want %d)", b.stale, stale, n, hosted, len(b.asking), asking)
	}
}

// drain runs follow-up rounds, as run would, until nothing is left to ask, and returns the
// queries sent (unpacked), failing if any breaks the bounds.
func drain(t *testing.T, b *browser, now time.Time) []*dns.Msg {
	t.Helper()
	var out []*dns.Msg
	for i := 0; len(b.asking) > 0; i++ {
		if i > 100000 {
			t.Fatal("follow-ups never end")
		}
		pk := b.followUpQuery(now)
		if pk != nil {
			if len(pk) > maxQueryLen {
				t.Fatalf("follow-up query of %d bytes", len(pk))
			}
			m := new(dns.Msg)
			if err := m.Unpack(pk); err != nil {
				t.Fatal(err)
			}
			if len(m.Question) == 0 || len(m.Question) > maxQuestions || m.Response {
				t.Fatalf("follow-up query with %d questions (response %v)", len(m.Question), m.Response)
			}
			if b.followUpQuery(now) != nil {
				t.Fatal("two follow-up queries at the same instant")
			}
			out = append(out, m)
		}
		if t, ok := b.nextFollowUp(); ok && t.After(now) {
			now = t
		} else {
			now = now.Add(time.Millisecond)
		}
	}
	checkIndexes(t, b)
	if t2, ok := b.nextFollowUp(); ok {
		t.Fatalf("follow-up still due at %v", t2)
	}
	if pk := b.followUpQuery(now.Add(time.Hour)); pk != nil {
		t.Fatal("follow-up query after every instance gave up")
	}
	return out
}

func TestBrowserCapsInstances(t *testing.T) {
	b := &browser{log: testLog(t)}
	// An instance seen before the flood, completed piecemeal during and after it.
	if got := b.handle(response(t, ptrRR("keeper"))); len(got) != 0 {
		t.Fatalf("PTR alone reported %+v", got)
	}
	start := time.Now()
	for i := 0; i < 100; i++ {
		var rrs []dns.RR
		for j := 0; j < 100; j++ {
			rrs = append(rrs, ptrRR(fmt.Sprintf("junk %d-%d", i, j)))
		}
		if i == 50 {
			rrs = append(rrs, srvRR("keeper", "keeper.local.", 7), txtRR("keeper"))
		}
		if got := b.handle(response(t, rrs...)); len(got) != 0 {
			t.Fatalf("packet %d reported %+v", i, got)
		}
	}
	t.Logf("10,000 PTR records in 100 packets handled in %v", time.Since(start))
	if len(b.insts) != maxPerSource || len(b.asking) != maxPerSource {
		t.Fatalf("tracking %d instances, asking about %d; want the cap, %d", len(b.insts), len(b.asking), maxPerSource)
	}
	checkIndexes(t, b)
	// Full, with nothing evictable: new names are ignored, even complete ones.
	if got := b.handle(response(t, ptrRR("late"), srvRR("late", "late.local.", 8), txtRR("late"), aRR("late.local.", 8))); len(got) != 0 {
		t.Fatalf("new instance past the cap reported: %+v", got)
	}
	if b.insts[strings.ToLower(instanceFQDN("late"))] != nil {
		t.Fatal("new instance tracked past the cap")
	}
	// The keeper is still tracked, and its addresses complete it: reported once.
	got := b.handle(response(t, aRR("keeper.local.", 7)))
	if len(got) != 1 || got[0].Instance != "keeper" || got[0].Port != 7 || got[0].Addrs[0].String() != "10.0.0.7" || got[0].TXT["id"] != "keeper" {
		t.Fatalf("keeper: %+v", got)
	}
	again := response(t, ptrRR("keeper"), srvRR("keeper", "keeper.local.", 7), txtRR("keeper"), aRR("keeper.local.", 7))
	if got := b.handle(again); len(got) != 0 {
		t.Fatalf("keeper reported twice: %+v", got)
	}
	checkIndexes(t, b)

	// Once the junk has given up asking, new instances may take its places.
	qs := drain(t, b, time.Now())
	t.Logf("%d follow-up queries", len(qs))
	if b.stale != maxPerSource-1 {
		t.Fatalf("%d instances gave up, want %d", b.stale, maxPerSource-1)
	}
	got = b.handle(response(t, ptrRR("late"), srvRR("late", "late.local.", 8), txtRR("late"), aRR("late.local.", 8)))
	if len(got) != 1 || got[0].Instance != "late" {
		t.Fatalf("late instance after the junk gave up: %+v", got)
	}
	if len(b.insts) != maxPerSource || b.stale != maxPerSource-2 {
		t.Fatalf("tracking %d, stale %d", len(b.insts), b.stale)
	}
	if got := b.handle(again); len(got) != 0 {
		t.Fatalf("keeper reported again after eviction: %+v", got)
	}
	checkIndexes(t, b)
}

func TestFollowUpQueriesBounded(t *testing.T) {
	b := &browser{log: testLog(t)}
	// Host names that compress badly (the distinct label is next to "local.").
	long := strings.Repeat("a", 63)
	host := func(i int) string { return fmt.Sprintf("%s.%s.%s.h%d.local.", long, long, long, i) }
	var rrs []dns.RR
	want := map[string]int{} // a name each instance is asked about -> rounds seen
	for i := 0; i < maxPerSource; i++ {
		inst := fmt.Sprintf("inst %d", i)
		switch i % 3 {
		case 0: // PTR only: SRV and TXT questions
			rrs = append(rrs, ptrRR(inst))
			want[strings.ToLower(instanceFQDN(inst))] = 0
		case 1: // SRV and TXT but no address: A and AAAA questions
			rrs = append(rrs, srvRR(inst, host(i), 1), txtRR(inst))
			want[strings.ToLower(host(i))] = 0
		case 2: // SRV only: all four
			rrs = append(rrs, srvRR(inst, host(i), 1))
			want[strings.ToLower(instanceFQDN(inst))] = 0
		}
		if len(rrs) >= 30 {
			b.handle(response(t, rrs...))
			rrs = nil
		}
	}
	b.handle(response(t, rrs...))
	if len(b.asking) != maxPerSource {
		t.Fatalf("asking about %d instances, want %d", len(b.asking), maxPerSource)
	}
	checkIndexes(t, b)
	queries := drain(t, b, time.Now())
	maxQ, maxLen := 0, 0
	for _, m := range queries {
		seen := map[string]bool{}
		for _, q := range m.Question {
			n := strings.ToLower(q.Name)
			if _, ok := want[n]; ok && !seen[n] {
				seen[n] = true
				want[n]++
			}
		}
		m.Compress = true // as sent (drain checked the sent length too)
		maxQ, maxLen = max(maxQ, len(m.Question)), max(maxLen, m.Len())
	}
	t.Logf("%d queries, at most %d questions, %d bytes", len(queries), maxQ, maxLen)
	for n, rounds := range want {
		if rounds != maxFollowUps {
			t.Errorf("%s asked about in %d queries, want %d", n, rounds, maxFollowUps)
		}
	}
	if b.stale != maxPerSource || len(b.insts) != maxPerSource {
		t.Fatalf("stale %d of %d", b.stale, len(b.insts))
	}
}

func TestFollowUpGivesUp(t *testing.T) {
	b := &browser{log: testLog(t)}
	b.handle(response(t, ptrRR("mute")))
	start := time.Now()
	var at []time.Duration
	for now := start; now.Sub(start) < time.Minute; now = now.Add(5 * time.Millisecond) {
		if pk := b.followUpQuery(now); pk != nil {
			m := new(dns.Msg)
			if err := m.Unpack(pk); err != nil {
				t.Fatal(err)
			}
			if len(m.Question) != 2 || m.Question[0].Qtype != dns.TypeSRV || m.Question[1].Qtype != dns.TypeTXT || !sameName(m.Question[0].Name, instanceFQDN("mute")) {
				t.Fatalf("follow-up %v", m.Question)
			}
			at = append(at, now.Sub(start))
		}
		if now.Sub(start) == 10*time.Second {
			b.handle(response(t, ptrRR("mute"))) // re-announced: still not asked again
		}
	}
	t.Logf("asked at %v", at)
	if len(at) != maxFollowUps {
		t.Fatalf("asked %d times, want %d", len(at), maxFollowUps)
	}
	if at[0] != 0 || at[1] < firstFollowUp || at[2] < at[1]+2*firstFollowUp {
		t.Errorf("asked at %v, want 0, 250ms, 750ms", at)
	}
	s := b.insts[strings.ToLower(instanceFQDN("mute"))]
	if s == nil || !s.gaveUp || b.stale != 1 || len(b.asking) != 0 {
		t.Fatalf("state %+v stale %d asking %d", s, b.stale, len(b.asking))
	}
	// An announcement may still complete it, once.
	p := response(t, srvRR("mute", "mute.local.", 3), txtRR("mute"), aRR("mute.local.", 3))
	if got := b.handle(p); len(got) != 1 || got[0].Instance != "mute" {
		t.Fatalf("announcement after giving up: %+v", got)
	}
	if got := b.handle(p); len(got) != 0 {
		t.Fatalf("reported twice: %+v", got)
	}
	if b.stale != 0 {
		t.Fatalf("stale %d after the instance was reported", b.stale)
	}
	checkIndexes(t, b)
}

func TestBrowserAddressesFollowLatestSRV(t *testing.T) {
	b := &browser{}
	b.handle(response(t, srvRR("x", "h1.local.", 1), txtRR("x")))
	b.handle(response(t, srvRR("x", "h2.local.", 2)))
	checkIndexes(t, b)
	if got := b.handle(response(t, aRR("h1.local.", 1))); len(got) != 0 {
		t.Fatalf("completed with the previous host's address: %+v", got)
	}
	got := b.handle(response(t, aRR("H2.local.", 2)))
	if len(got) != 1 || got[0].Port != 2 || got[0].Addrs[0].String() != "10.0.0.2" {
		t.Fatalf("got %+v", got)
	}
	if len(b.byHost) != 0 || len(b.asking) != 0 {
		t.Fatalf("reported instance still indexed: byHost %d asking %d", len(b.byHost), len(b.asking))
	}
	// A goodbye forgets an unreported instance entirely.
	b.handle(response(t, srvRR("y", "hy.local.", 1)))
	bye := &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, 0), Ptr: instanceFQDN("y")}
	b.handle(response(t, bye))
	if len(b.insts) != 1 || len(b.byHost) != 0 || len(b.asking) != 0 {
		t.Fatalf("after goodbye: insts %d byHost %d asking %d", len(b.insts), len(b.byHost), len(b.asking))
	}
	checkIndexes(t, b)
}
