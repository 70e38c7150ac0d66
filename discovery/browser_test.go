package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func fromSrc(p *packet, src string) *packet {
	p.src = netip.MustParseAddrPort(src)
	return p
}

// A flood of fake instances from one host fills only that host's share of the instance
// table: a real server from another host is still found.
func TestBrowserFloodFromOneSource(t *testing.T) {
	b := &browser{log: testLog(t)}
	for i := 0; i < 20; i++ {
		var rrs []dns.RR
		for j := 0; j < 100; j++ {
			rrs = append(rrs, ptrRR(fmt.Sprintf("fake %d-%d", i, j)))
		}
		b.handle(fromSrc(response(t, rrs...), "198.18.0.66:5353"))
	}
	if len(b.insts) != maxPerSource {
		t.Fatalf("one source introduced %d instances, cap %d", len(b.insts), maxPerSource)
	}
	got := b.handle(fromSrc(response(t, ptrRR("real"), srvRR("real", "real.local.", 7), txtRR("real"), aRR("real.local.", 7)), "198.18.0.7:5353"))
	if len(got) != 1 || got[0].Instance != "real" {
		t.Fatalf("real server from another host: %+v", got)
	}
	checkIndexes(t, b)
}

// Records that cannot lead to a server are ignored: SRV port 0, broadcast and unspecified
// addresses; TXT beyond maxTXTBytes is cut.
func TestBrowserRefusesUnusableRecords(t *testing.T) {
	b := &browser{log: testLog(t)}
	if got := b.handle(response(t, ptrRR("zero"), srvRR("zero", "zero.local.", 0), txtRR("zero"), aRR("zero.local.", 1))); len(got) != 0 {
		t.Errorf("SRV with port 0 reported: %+v", got)
	}
	bcast := &dns.A{Hdr: hdr("b.local.", dns.TypeA, 0, 120), A: []byte{255, 255, 255, 255}}
	unspec := &dns.A{Hdr: hdr("b.local.", dns.TypeA, 0, 120), A: []byte{0, 0, 0, 0}}
	if got := b.handle(response(t, ptrRR("b"), srvRR("b", "b.local.", 9), txtRR("b"), bcast, unspec)); len(got) != 0 {
		t.Errorf("reported with only broadcast/unspecified addresses: %+v", got)
	}
	big := []string{"v=1"}
	for i := 0; i < 20; i++ {
		big = append(big, fmt.Sprintf("k%d=%s", i, strings.Repeat("x", 200)))
	}
	txt := &dns.TXT{Hdr: hdr(instanceFQDN("big"), dns.TypeTXT, 0, 120), Txt: big}
	got := b.handle(response(t, ptrRR("big"), srvRR("big", "big.local.", 9), txt, aRR("big.local.", 9)))
	if len(got) != 1 {
		t.Fatalf("big TXT: %+v", got)
	}
	n := 0
	for k, v := range got[0].TXT {
		n += len(k) + 2 + len(v)
	}
	if n > maxTXTBytes || got[0].TXT["v"] != "1" {
		t.Errorf("kept %d bytes of TXT (cap %d): %v", n, maxTXTBytes, got[0].TXT)
	}
}

// Watch reports a change of port and of TXT, refreshes a record before it expires, and
// reports the instance removed when its records expire unanswered.
func TestWatchChangeRefreshExpiry(t *testing.T) {
	var mn memNet
	conn := mn.conn(50, true)
	tap := mn.conn(51, false) // sees the refresh queries
	b := &browser{log: testLog(t), conn: conn, watch: true}
	b.init()
	b.setInterfaces(conn.interfaces())
	t0 := time.Now()
	b.now = t0
	b.handle(response(t, ptrRR("w"), srvRR("w", "w.local.", 7), txtRR("w"), aRR("w.local.", 7)))
	b.handle(response(t, srvRR("w", "w.local.", 8), aRR("w.local.", 7)))
	txt := &dns.TXT{Hdr: hdr(instanceFQDN("w"), dns.TypeTXT, 0, 120), Txt: []string{"v=1", "id=w", "new=1"}}
	b.handle(response(t, txt))
	kinds := func() string {
		var ks []string
		for _, ev := range b.events {
			ks = append(ks, ev.Kind.String())
		}
		return strings.Join(ks, " ")
	}
	if k := kinds(); k != "add change change" || b.events[1].Service.Port != 8 || b.events[2].Service.TXT["new"] != "1" {
		t.Fatalf("events %q: %+v", k, b.events)
	}
	b.events = nil
	// 80% of the 120 s TTL: a refresh query for its SRV.
	b.maintain(t0.Add(96 * time.Second))
	select {
	case p := <-tap.pkts:
		m := new(dns.Msg)
		if err := m.Unpack(p.b); err != nil || len(m.Question) != 1 || !sameName(m.Question[0].Name, instanceFQDN("w")) {
			t.Fatalf("refresh query %v %v", m, err)
		}
	default:
		t.Fatal("no refresh query at 80% of the TTL")
	}
	if len(b.events) != 0 {
		t.Fatalf("events before expiry: %+v", b.events)
	}
	b.maintain(t0.Add(120 * time.Second))
	if kinds() != "remove" || b.events[0].Service.Instance != "w" || len(b.insts) != 0 {
		t.Fatalf("after expiry: %q, %d tracked", kinds(), len(b.insts))
	}
}

// End to end over the in-memory network: Advertiser and Watch as they run on sockets. The
// second server is renamed, sees the first leave, and takes its name back; the watcher
// follows all of it.
func TestMemNetAdvertiseWatchHeal(t *testing.T) {
	var mn memNet
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := func(last byte, port uint16) *Advertiser {
		a, err := advertiseOn(ctx, mn.conn(last, false), engineConfig{instance: "kitchen", host: fmt.Sprintf("h%d", last), port: port,
			txt: []string{"v=1"}, log: testLog(t)}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	first := start(11, 1001)
	second := start(12, 1002)
	if second.Service().Instance != "kitchen (2)" {
		t.Fatalf("second is %q", second.Service().Instance)
	}
	var log []string
	err := browseOn(ctx, mn.conn(50, true), testLog(t), true, func(ev Event) {
		log = append(log, fmt.Sprintf("%s %s %d", ev.Kind, ev.Service.Instance, ev.Service.Port))
		if len(log) == 2 {
			first.Close()
		}
		if ev.Kind == Added && ev.Service.Instance == "kitchen" && ev.Service.Port == 1002 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"remove kitchen 1001", "remove kitchen (2) 1002", "add kitchen 1002"}
	if len(log) != 5 || strings.Join(log[2:], ", ") != strings.Join(want, ", ") {
		t.Fatalf("watch saw %q, want two adds then %q", log, want)
	}
	if second.Service().Instance != "kitchen" {
		t.Errorf("second is %q after the first left", second.Service().Instance)
	}
}

// Passive observation of failure (RFC 6762 section 10.5): two multicast questions from other
// hosts for a watched server's SRV, unanswered for 10 s, remove it before its TTL runs out;
// an answer in between keeps it.
func TestWatchPassiveObservationOfFailure(t *testing.T) {
	for _, answered := range []bool{false, true} {
		b := &browser{log: testLog(t), watch: true}
		t0 := time.Now()
		b.now = t0
		b.handle(response(t, ptrRR("p"), srvRR("p", "p.local.", 7), txtRR("p"), aRR("p.local.", 7)))
		b.events = nil
		ask := func(at time.Duration, src string, qu bool) {
			b.now = t0.Add(at)
			q := dns.Question{Name: instanceFQDN("p"), Qtype: dns.TypeSRV, Qclass: dns.ClassINET}
			if qu {
				q.Qclass |= qclassQU
			}
			pk, err := (&dns.Msg{Question: []dns.Question{q}}).Pack()
			if err != nil {
				t.Fatal(err)
			}
			p, _ := parsePacket(pk)
			b.handle(fromSrc(p, src))
		}
		ask(time.Second, "198.18.0.5:5353", false)
		ask(2*time.Second, "198.18.0.5:40000", false) // legacy: its answer is unicast, unseen
		ask(2*time.Second, "198.18.0.6:5353", true)   // QU: likewise
		b.maintain(t0.Add(11 * time.Second))
		if len(b.events) != 0 {
			t.Fatalf("removed after one multicast question: %+v", b.events)
		}
		ask(12*time.Second, "198.18.0.5:5353", false)
		ask(13*time.Second, "198.18.0.6:5353", false)
		if answered {
			b.now = t0.Add(14 * time.Second)
			b.handle(response(t, srvRR("p", "p.local.", 7)))
		}
		b.maintain(t0.Add(21 * time.Second))
		b.maintain(t0.Add(22 * time.Second))
		removed := len(b.events) == 1 && b.events[0].Kind == Removed
		if removed == answered {
			t.Errorf("answered %v: events %+v", answered, b.events)
		}
	}
}

// A server started with no usable interface (a laptop offline) starts advertising when one
// comes up, without a restart.
func TestMemNetAdvertiseWhenInterfaceComesUp(t *testing.T) {
	var mn memNet
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn := mn.conn(11, false)
	ifs := conn.interfaces()
	conn.setInterfaces(nil)
	a, err := advertiseOn(ctx, conn, engineConfig{instance: "offline", host: "h11", port: 1, txt: []string{"v=1"}, log: testLog(t)}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if s := a.Service(); len(s.Addrs) != 0 {
		t.Fatalf("advertises %v with no interface", s.Addrs)
	}
	up := time.Now()
	conn.setInterfaces(ifs)
	var took time.Duration
	err = browseOn(ctx, mn.conn(50, true), testLog(t), true, func(ev Event) {
		if ev.Kind == Added && ev.Service.Instance == "offline" {
			took = time.Since(up)
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if took == 0 {
		t.Fatal("never found after its interface came up")
	}
	t.Logf("found %v after the interface came up", took)
	if took > 5*time.Second {
		t.Errorf("found %v after the interface came up, want within 5s", took)
	}
}
