package discovery

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// RFC 6762 conformance of the responder, on the simulated LAN (sim_test.go): raw packets in,
// raw packets out, virtual time.

// Section 8.1: after a random 0-250 ms, three probes 250 ms apart, ANY questions for the
// instance and host with the proposed records in the authority section; then, 250 ms after
// the last probe, announcements one second apart with the cache-flush bit on unique records.
func TestProbeAndAnnounceTiming(t *testing.T) {
	for seed := byte(1); seed <= 5; seed++ {
		s := newSim(t)
		h := s.addHost("box", "kitchen", 5050, 10+seed)
		s.run(5 * time.Second)
		probes := s.sentBy("box", isProbe)
		if len(probes) != probeCount {
			t.Fatalf("%d probes, want %d", len(probes), probeCount)
		}
		if d := s.since(probes[0].at); d < 0 || d > probeJitter {
			t.Errorf("first probe at %v, want within 0-250ms", d)
		}
		for i := 1; i < len(probes); i++ {
			if gap := probes[i].at.Sub(probes[i-1].at); gap != probeInterval {
				t.Errorf("probe %d after %v, want %v", i+1, gap, probeInterval)
			}
		}
		p := probes[0].msg
		if !asks(probes[0], instanceFQDN("kitchen")) || !asks(probes[0], hostFQDN("box")) || p.Question[0].Qtype != dns.TypeANY {
			t.Errorf("probe questions %v", p.Question)
		}
		var authTypes []uint16
		for _, rr := range p.Ns {
			authTypes = append(authTypes, rr.Header().Rrtype)
		}
		if !slices.Equal(authTypes, []uint16{dns.TypeSRV, dns.TypeTXT, dns.TypeA}) {
			t.Errorf("probe authority types %v", authTypes)
		}
		ann := s.sentBy("box", isResponse)
		if len(ann) != announceCount {
			t.Fatalf("%d announcements, want %d", len(ann), announceCount)
		}
		if gap := ann[0].at.Sub(probes[2].at); gap != probeInterval {
			t.Errorf("first announcement %v after the last probe, want %v", gap, probeInterval)
		}
		for i := 1; i < len(ann); i++ {
			if gap := ann[i].at.Sub(ann[i-1].at); gap != announceEvery {
				t.Errorf("announcement %d after %v", i+1, gap)
			}
		}
		for _, rr := range ann[0].msg.Answer {
			flush := rr.Header().Class&cacheFlush != 0
			if flush == shared(rr) || rr.Header().Ttl != recordTTL {
				t.Errorf("announced %v: cache-flush %v", rr, flush)
			}
		}
		if ann[0].dst != group4 || !h.e.isLive() {
			t.Errorf("announcement to %v, live %v", ann[0].dst, h.e.isLive())
		}
	}
}

// Section 8.1: an answer to a probe is a conflict; the newcomer renames and logs at warn who
// holds the name.
func TestProbeConflictRenames(t *testing.T) {
	s := newSim(t)
	s.addHost("first", "kitchen", 5050, 11)
	s.run(3 * time.Second)
	second := s.addHost("second", "kitchen", 6060, 12)
	s.run(8 * time.Second)
	if got := second.e.service().Instance; got != "kitchen (2)" {
		t.Fatalf("second is %q, want \"kitchen (2)\"", got)
	}
	w := warnLines(second)
	if len(w) != 1 || !strings.Contains(w[0], `"held_by":"first.local. at 198.18.2.11"`) || !strings.Contains(w[0], `"new_name":"kitchen (2)"`) {
		t.Errorf("warn lines %q", w)
	}
	if s.hosts[0].e.service().Instance != "kitchen" {
		t.Errorf("first renamed to %q", s.hosts[0].e.service().Instance)
	}
}

// Section 8.2: two hosts probing the same name at once. The lexicographically later data
// (here the higher port) wins; the loser waits a second, probes again, hears the winner and
// renames. Without the tie-break both would keep the name.
func TestSimultaneousProbeTieBreak(t *testing.T) {
	s := newSim(t)
	low := s.addHost("low", "kitchen", 1000, 11)
	high := s.addHost("high", "kitchen", 2000, 12)
	s.run(10 * time.Second)
	if got := high.e.service().Instance; got != "kitchen" {
		t.Errorf("winner is %q", got)
	}
	if got := low.e.service().Instance; got != "kitchen (2)" {
		t.Errorf("loser is %q, want \"kitchen (2)\"", got)
	}
	// The loser stopped probing when it heard the winner's first probe: it sent no probe for
	// the name between that and the winner's first announcement.
	first := s.sentBy("high", isProbe)[0].at
	ann := s.sentBy("high", isResponse)[0].at
	if ann.Sub(first) != probeCount*probeInterval {
		t.Fatalf("winner announced %v after its first probe", ann.Sub(first))
	}
	for _, p := range s.sentBy("low", func(p simPkt) bool { return isProbe(p) && asks(p, instanceFQDN("kitchen")) }) {
		if p.at.After(first) && p.at.Before(ann) {
			t.Errorf("loser probed for kitchen %v after the winner's first probe", p.at.Sub(first))
		}
	}
}

// Section 9: a conflicting answer after announcing sends the host back to probing; when the
// rival still answers, it renames.
func TestConflictAfterAnnouncing(t *testing.T) {
	s := newSim(t)
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(4 * time.Second)
	if !h.e.isLive() {
		t.Fatal("not live")
	}
	before := len(s.sentBy("box", isProbe))
	s.inject(simPkt{src: querier, msg: rival("kitchen", 9999)})
	s.peer = func(p simPkt) []simPkt {
		if isProbe(p) && asks(p, instanceFQDN("kitchen")) {
			return []simPkt{{src: querier, msg: rival("kitchen", 9999)}}
		}
		return nil
	}
	s.run(10 * time.Second)
	if n := len(s.sentBy("box", isProbe)); n <= before {
		t.Fatal("no probe after the conflicting answer")
	}
	if got := h.e.service().Instance; got != "kitchen (2)" {
		t.Errorf("after the conflict: %q, want \"kitchen (2)\"", got)
	}
	if !h.e.isLive() {
		t.Error("not live again")
	}
}

// Section 8.1: after 15 conflicts within 10 s, probes are 5 s apart; a host never gives up.
func TestProbeRateLimitNeverGivesUp(t *testing.T) {
	s := newSim(t)
	conflicts := 0
	s.peer = func(p simPkt) []simPkt {
		if !isProbe(p) || conflicts >= 30 {
			return nil
		}
		name, _ := parseInstanceFQDN(p.msg.Question[0].Name)
		conflicts++
		return []simPkt{{src: querier, msg: rival(name, 9999)}}
	}
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(2 * time.Minute)
	if conflicts != 30 {
		t.Fatalf("%d conflicts", conflicts)
	}
	probes := s.sentBy("box", isProbe)
	var rounds []time.Time // first probe of each name
	seen := map[string]bool{}
	for _, p := range probes {
		if n := strings.ToLower(p.msg.Question[0].Name); !seen[n] {
			seen[n] = true
			rounds = append(rounds, p.at)
		}
	}
	for i := 1; i < len(rounds); i++ {
		gap := rounds[i].Sub(rounds[i-1])
		if i >= conflictLimit && gap < rateLimitedWait {
			t.Errorf("round %d only %v after the previous one", i+1, gap)
		}
		if i < conflictLimit-1 && gap >= time.Second {
			t.Errorf("round %d waited %v before the limit", i+1, gap)
		}
	}
	if got := h.e.service().Instance; got != "kitchen (31)" || !h.e.isLive() {
		t.Errorf("after 30 conflicts: %q live %v, want \"kitchen (31)\" live", got, h.e.isLive())
	}
}

func liveHost(t *testing.T) (*sim, *simHost) {
	s := newSim(t)
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(4 * time.Second)
	if !h.e.isLive() {
		t.Fatal("not live")
	}
	return s, h
}

// Section 5.4 and 6: a QU question is answered by unicast at once; a QM question by multicast,
// which a host that only listens sees, after 20-120 ms when it holds a shared record (PTR),
// at once when all records are unique.
func TestQUAndQMAnswers(t *testing.T) {
	s, _ := liveHost(t)
	n := len(s.log)
	t0 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question(serviceFQDN, dns.TypePTR, true))})
	got := s.sentBy("box", func(p simPkt) bool { return p.at.After(t0) || p.at.Equal(t0) })
	got = slices.DeleteFunc(got, func(p simPkt) bool {
		return slices.ContainsFunc(s.log[:n], func(q simPkt) bool { return q.msg == p.msg })
	})
	if len(got) != 1 || got[0].dst != querier || !got[0].at.Equal(t0) || !carries(got[0], serviceFQDN, dns.TypePTR) {
		t.Fatalf("QU answer: %+v", got)
	}
	if !carries(got[0], instanceFQDN("kitchen"), dns.TypeSRV) || !carries(got[0], hostFQDN("box"), dns.TypeA) {
		t.Errorf("QU answer lacks SRV and address in the additional section: %v", got[0].msg)
	}

	s.run(10 * time.Second) // past the once-a-second limit
	t1 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question(serviceFQDN, dns.TypePTR, false))})
	if len(s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t1) })) != 0 {
		t.Fatal("QM answer with a shared record sent without the 20-120 ms delay")
	}
	s.run(11 * time.Second)
	m := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t1) })
	if len(m) != 1 || m[0].dst != group4 || !carries(m[0], serviceFQDN, dns.TypePTR) {
		t.Fatalf("QM answer: %+v", m)
	}
	// A third host that only listens heard the QM answer, and not the QU one.
	var heard []*dns.Msg
	for _, p := range s.heard[2] {
		if p.from == "box" && !p.at.Before(t0) {
			heard = append(heard, p.msg)
		}
	}
	if len(heard) != 1 || heard[0] != m[0].msg {
		t.Errorf("a listening host heard %d answers since the QU question, want only the QM one", len(heard))
	}
	if d := m[0].at.Sub(t1); d < sharedDelayMin || d > sharedDelayMax {
		t.Errorf("QM answer delayed %v, want 20-120ms", d)
	}

	t2 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question(instanceFQDN("kitchen"), dns.TypeSRV, false))})
	u := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t2) })
	if len(u) != 1 || u[0].dst != group4 || !u[0].at.Equal(t2) {
		t.Fatalf("QM answer with unique records only: %+v", u)
	}
}

// Section 6.7: a query from a port other than 5353 gets a direct answer that echoes its ID
// and question, with TTLs of at most 10 s and no cache-flush bit, at once.
func TestLegacyUnicast(t *testing.T) {
	s, _ := liveHost(t)
	src := netip.MustParseAddrPort("198.18.2.99:40000")
	t0 := s.now
	s.inject(simPkt{src: src, msg: query(0x1234, question(serviceFQDN, dns.TypePTR, false))})
	got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) })
	if len(got) != 1 || got[0].dst != src || !got[0].at.Equal(t0) {
		t.Fatalf("legacy answer: %+v", got)
	}
	m := got[0].msg
	if m.Id != 0x1234 || len(m.Question) != 1 || m.Question[0].Name != serviceFQDN || m.Question[0].Qtype != dns.TypePTR {
		t.Errorf("legacy answer id %#x question %v", m.Id, m.Question)
	}
	for _, rr := range append(m.Answer, m.Extra...) {
		if rr.Header().Ttl > legacyTTL || rr.Header().Class&cacheFlush != 0 {
			t.Errorf("legacy answer record %v", rr)
		}
	}
	if len(m.Extra) == 0 {
		t.Error("legacy answer without SRV/TXT/A")
	}
}

// Section 7.1: a record the querier lists as known, with at least half its TTL left, is not
// sent again.
func TestKnownAnswerSuppression(t *testing.T) {
	s, h := liveHost(t)
	ptr := h.e.records(h.e.links[linkKey{2, false}]).ptr(recordTTL)
	s.run(10 * time.Second)
	ask := func(ttl uint32) []simPkt {
		t0 := s.now
		q := query(0, question(serviceFQDN, dns.TypePTR, true))
		known := dns.Copy(ptr)
		known.Header().Ttl = ttl
		q.Answer = []dns.RR{known}
		s.inject(simPkt{src: querier, msg: q})
		return s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) })
	}
	if got := ask(recordTTL); len(got) != 0 {
		t.Errorf("answered although the answer is known: %v", got[0].msg)
	}
	if got := ask(recordTTL/2 - 1); len(got) != 1 {
		t.Errorf("known answer with less than half its TTL left suppressed the answer (%d sent)", len(got))
	}
}

// Section 7.2: a query with the TC bit is answered after 400-500 ms, with the known answers of
// the packets that follow it taken into account.
func TestTruncatedQuery(t *testing.T) {
	s, h := liveHost(t)
	s.run(10 * time.Second)
	ptr := h.e.records(h.e.links[linkKey{2, false}]).ptr(recordTTL)

	t0 := s.now
	q := query(0, question(serviceFQDN, dns.TypePTR, false))
	q.Truncated = true
	s.inject(simPkt{src: querier, msg: q})
	cont := &dns.Msg{Answer: []dns.RR{ptr}}
	s.inject(simPkt{src: querier, msg: cont})
	s.run(12 * time.Second)
	if got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) }); len(got) != 0 {
		t.Errorf("answered a truncated query whose continuation knows the answer: %v", got[0].msg)
	}

	t1 := s.now
	s.inject(simPkt{src: querier, msg: q})
	s.run(13 * time.Second)
	got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t1) })
	if len(got) != 1 {
		t.Fatalf("truncated query without continuation: %d answers", len(got))
	}
	if d := got[0].at.Sub(t1); d < tcDelayMin || d > tcDelayMax+sharedDelayMax {
		t.Errorf("answered %v after a truncated query, want 400-500ms", d)
	}
}

// Section 6: a record is multicast on an interface at most once a second.
func TestMulticastOncePerSecond(t *testing.T) {
	s, _ := liveHost(t)
	s.run(10 * time.Second)
	srvQ := query(0, question(instanceFQDN("kitchen"), dns.TypeSRV, false))
	t0 := s.now
	s.inject(simPkt{src: querier, msg: srvQ})
	s.run(10*time.Second + 500*time.Millisecond)
	s.inject(simPkt{src: querier, msg: srvQ})
	if n := len(s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) })); n != 1 {
		t.Fatalf("%d multicast answers within a second", n)
	}
	s.run(11*time.Second + 100*time.Millisecond)
	s.inject(simPkt{src: querier, msg: srvQ})
	if n := len(s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) })); n != 2 {
		t.Fatalf("%d multicast answers after more than a second, want 2", n)
	}
}

// Section 10.1: Close sends goodbyes (TTL 0) on every interface, each with its own group.
func TestGoodbyesOnEveryInterface(t *testing.T) {
	s := newSim(t)
	h := s.addHost("box", "kitchen", 5050, 11, eth(2, 11), eth(3, 11))
	s.run(4 * time.Second)
	t0 := s.now
	h.e.close()
	s.flush()
	got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) })
	links := map[int]bool{}
	for _, p := range got {
		links[p.link] = true
		for _, rr := range p.msg.Answer {
			if rr.Header().Ttl != 0 {
				t.Errorf("goodbye with TTL %d: %v", rr.Header().Ttl, rr)
			}
		}
		if len(p.msg.Answer) != 3 {
			t.Errorf("goodbye %v, want PTR, SRV and TXT", p.msg)
		}
	}
	if len(got) != 2 || !links[2] || !links[3] {
		t.Errorf("goodbyes on links %v (%d packets), want both", links, len(got))
	}
	if !h.e.next().IsZero() {
		t.Error("closed engine still has work")
	}
}

// An answer on an interface carries that interface's addresses only.
func TestAnswerCarriesInterfaceAddresses(t *testing.T) {
	s := newSim(t)
	s.addHost("box", "kitchen", 5050, 11, eth(2, 11), eth(3, 11))
	s.run(10 * time.Second)
	for _, link := range []int{2, 3} {
		t0 := s.now
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(link), 99}), 40000)
		s.inject(simPkt{src: src, link: link, msg: query(1, question(hostFQDN("box"), dns.TypeA, false))})
		got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) && p.dst == src })
		if len(got) != 1 || len(got[0].msg.Answer) != 1 {
			t.Fatalf("link %d: %+v", link, got)
		}
		want := netip.AddrFrom4([4]byte{198, 18, byte(link), 11})
		if a, _ := rrAddr(got[0].msg.Answer[0]); a != want || got[0].link != link {
			t.Errorf("answer on link %d carries %v, want %v", link, a, want)
		}
	}
}

// Interfaces that come, change and go: probe and announce on a new one, goodbye for an
// address that went away and announce the new one.
func TestInterfaceChanges(t *testing.T) {
	s := newSim(t)
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(4 * time.Second)
	h.ifs = []netIface{eth(2, 11), eth(3, 11)}
	t0 := s.now
	h.e.setInterfaces(s.now, h.ifs)
	s.run(8 * time.Second)
	on3 := s.sentBy("box", func(p simPkt) bool { return p.link == 3 && !p.at.Before(t0) })
	if len(on3) != probeCount+announceCount || !isProbe(on3[0]) || !isResponse(on3[probeCount]) {
		t.Fatalf("new interface: %d packets", len(on3))
	}
	if d := on3[probeCount].at.Sub(t0); d > time.Second {
		t.Errorf("announced on the new interface after %v", d)
	}
	moved := eth(3, 11)
	moved.prefixes = []netip.Prefix{netip.MustParsePrefix("198.18.3.77/24")}
	h.ifs = []netIface{eth(2, 11), moved}
	t1 := s.now
	h.e.setInterfaces(s.now, h.ifs)
	s.run(12 * time.Second)
	got := s.sentBy("box", func(p simPkt) bool { return p.link == 3 && !p.at.Before(t1) })
	if len(got) < 2 {
		t.Fatalf("address change: %d packets", len(got))
	}
	bye := got[0].msg.Answer
	if a, _ := rrAddr(bye[0]); len(bye) != 1 || bye[0].Header().Ttl != 0 || a.String() != "198.18.3.11" {
		t.Errorf("goodbye for the old address: %v", got[0].msg)
	}
	if !carries(got[1], hostFQDN("box"), dns.TypeA) {
		t.Errorf("no announcement of the new address: %v", got[1].msg)
	}
	h.ifs = []netIface{eth(2, 11)}
	h.e.setInterfaces(s.now, h.ifs)
	if len(h.e.links) != 1 {
		t.Errorf("%d links after eth1 went away", len(h.e.links))
	}
}

// Names that heal: the renamed server takes its name back within 5 s of the holder's goodbye,
// withdraws the stand-in name, and logs the reclaim at warn.
func TestNameHealsAfterGoodbye(t *testing.T) {
	s := newSim(t)
	first := s.addHost("first", "kitchen", 5050, 11)
	s.run(3 * time.Second)
	second := s.addHost("second", "kitchen", 6060, 12)
	s.run(30 * time.Second)
	if second.e.service().Instance != "kitchen (2)" {
		t.Fatalf("second is %q", second.e.service().Instance)
	}
	bye := s.now
	first.e.close()
	s.flush()
	first.up = false
	s.run(40 * time.Second)
	if got := second.e.service().Instance; got != "kitchen" {
		t.Fatalf("after the holder's goodbye: %q", got)
	}
	ann := s.sentBy("second", func(p simPkt) bool {
		return isResponse(p) && !p.at.Before(bye) && carries(p, instanceFQDN("kitchen"), dns.TypeSRV)
	})
	if len(ann) == 0 || ann[0].at.Sub(bye) > 5*time.Second {
		t.Fatalf("announced the wanted name %v after the goodbye", ann)
	}
	gone := s.sentBy("second", func(p simPkt) bool {
		return isResponse(p) && !p.at.Before(bye) && len(p.msg.Answer) > 0 && p.msg.Answer[0].Header().Ttl == 0
	})
	if len(gone) == 0 || !sameName(gone[0].msg.Answer[0].(*dns.PTR).Ptr, instanceFQDN("kitchen (2)")) {
		t.Errorf("no goodbye for the stand-in name")
	}
	w := warnLines(second)
	if len(w) != 2 || !strings.Contains(w[1], "took our name back") {
		t.Errorf("warn lines %q", w)
	}
}

// Names that heal when the holder vanishes without a goodbye: once its records expire (120 s
// after it last answered), the name is taken back within 5 s.
func TestNameHealsAfterExpiry(t *testing.T) {
	s := newSim(t)
	first := s.addHost("first", "kitchen", 5050, 11)
	s.run(3 * time.Second)
	second := s.addHost("second", "kitchen", 6060, 12)
	s.run(200 * time.Second) // the holder answers the refresh queries
	if second.e.service().Instance != "kitchen (2)" {
		t.Fatalf("second took the name from a live holder: %q", second.e.service().Instance)
	}
	var last time.Time
	for _, p := range s.sentBy("first", isResponse) {
		last = p.at
	}
	first.up = false // gone, no goodbye
	s.run(600 * time.Second)
	if got := second.e.service().Instance; got != "kitchen" {
		t.Fatalf("after expiry: %q", got)
	}
	expiry := last.Add(recordTTL * time.Second)
	ann := s.sentBy("second", func(p simPkt) bool {
		return isResponse(p) && p.at.After(last) && carries(p, instanceFQDN("kitchen"), dns.TypeSRV)
	})
	if len(ann) == 0 || ann[0].at.Sub(expiry) > 5*time.Second {
		t.Fatalf("reclaimed at %v, holder's records expired at %v", ann, s.since(expiry))
	}
}

// The IPv4 and IPv6 links of an interface (and every interface that appears at once) probe
// together, and the responder counts as settled, which is when Advertise returns, only when
// probing has succeeded on all of them: otherwise a server could report its name while a
// newcomer still takes it on the interface it had not finished probing.
func TestLinksProbeTogether(t *testing.T) {
	s := newSim(t)
	ifc := eth(2, 11)
	ifc.v6 = true
	h := s.addHost("box", "kitchen", 5050, 11, ifc, eth(3, 11))
	var next time.Time
	for k, l := range h.e.links {
		if next.IsZero() {
			next = l.next
		}
		if !l.next.Equal(next) {
			t.Errorf("link %+v probes first at %v, another at %v", k, s.since(l.next), s.since(next))
		}
	}
	if len(h.e.links) != 3 {
		t.Fatalf("%d links, want 3", len(h.e.links))
	}
	h.e.links[linkKey{2, true}].phase = live // one link done early
	if !h.e.isLive() || h.e.settled() {
		t.Errorf("with one link live: live %v settled %v, want live and not settled", h.e.isLive(), h.e.settled())
	}
	s.run(3 * time.Second)
	if !h.e.settled() {
		t.Error("not settled after probing on every link")
	}
}

// Another service type (the chat page's _http._tcp) under the instance's name: answered with
// its SRV and TXT, listed in the service type enumeration, probed and renamed with the
// instance, withdrawn with it.
func TestAlsoService(t *testing.T) {
	s := newSim(t)
	s.also = []alsoService{{fqdn: "_http._tcp.local.", txt: []string{"path=/"}}}
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(4 * time.Second)
	probes := s.sentBy("box", isProbe)
	if len(probes) == 0 || !asks(probes[0], "kitchen._http._tcp.local.") {
		t.Fatalf("the probes do not ask for kitchen._http._tcp.local.: %v", probes)
	}

	t0 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question("_http._tcp.local.", dns.TypePTR, true))})
	got := s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t0) && p.dst == querier })
	if len(got) != 1 || !carries(got[0], "_http._tcp.local.", dns.TypePTR) || !carries(got[0], "kitchen._http._tcp.local.", dns.TypeSRV) ||
		!carries(got[0], hostFQDN("box"), dns.TypeA) {
		t.Fatalf("answer to _http._tcp PTR: %+v", got)
	}
	var txt *dns.TXT
	for _, rr := range got[0].msg.Extra {
		if x, ok := rr.(*dns.TXT); ok && sameName(x.Hdr.Name, "kitchen._http._tcp.local.") {
			txt = x
		}
	}
	if txt == nil || !slices.Equal(txt.Txt, []string{"path=/"}) {
		t.Errorf("TXT of kitchen._http._tcp.local.: %v, want path=/", txt)
	}
	s.run(6 * time.Second)
	t1 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question(metaFQDN, dns.TypePTR, true))})
	got = s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t1) && p.dst == querier })
	if len(got) != 1 || len(got[0].msg.Answer) != 2 {
		t.Fatalf("service type enumeration: %+v, want _lanmsg._tcp and _http._tcp", got)
	}

	// A second kitchen is renamed under both types.
	second := s.addHost("second", "kitchen", 6060, 12)
	s.run(8 * time.Second)
	if got := second.e.service().Instance; got != "kitchen (2)" {
		t.Fatalf("second is %q, want \"kitchen (2)\"", got)
	}
	t2 := s.now
	s.inject(simPkt{src: querier, msg: query(0, question(`kitchen\032(2)._http._tcp.local.`, dns.TypeSRV, true))})
	if got := s.sentBy("second", func(p simPkt) bool { return !p.at.Before(t2) && p.dst == querier }); len(got) != 1 {
		t.Errorf("second does not answer for kitchen (2)._http._tcp.local.: %+v", got)
	}

	t3 := s.now
	h.e.close()
	s.flush()
	for _, p := range s.sentBy("box", func(p simPkt) bool { return !p.at.Before(t3) }) {
		if len(p.msg.Answer) != 6 {
			t.Errorf("goodbye %v, want PTR, SRV and TXT of both types", p.msg)
		}
	}
}

// A device whose web page has the instance's name under _http._tcp makes the instance
// rename, as one with its name under _lanmsg._tcp does.
func TestAlsoServiceConflict(t *testing.T) {
	s := newSim(t)
	s.also = []alsoService{{fqdn: "_http._tcp.local.", txt: []string{"path=/"}}}
	s.peer = func(p simPkt) []simPkt {
		if p.from == "" || !isProbe(p) || !asks(p, "kitchen._http._tcp.local.") {
			return nil
		}
		srv := &dns.SRV{Hdr: dns.RR_Header{Name: "kitchen._http._tcp.local.", Rrtype: dns.TypeSRV, Class: dns.ClassINET | cacheFlush, Ttl: 120},
			Port: 80, Target: "printer.local."}
		return []simPkt{{src: netip.MustParseAddrPort("198.18.2.50:5353"), dst: group4, msg: respMsg([]dns.RR{srv}, nil)}}
	}
	h := s.addHost("box", "kitchen", 5050, 11)
	s.run(8 * time.Second)
	if got := h.e.service().Instance; got != "kitchen (2)" {
		t.Fatalf("box is %q, want \"kitchen (2)\" (its _http._tcp name was held)", got)
	}
}
