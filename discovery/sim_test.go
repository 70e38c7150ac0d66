package discovery

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// A simulated LAN for the responder's protocol logic, on a virtual clock: engines exchange
// packets instantly, the clock jumps to the next engine's next(), and the test reads every
// packet sent (a listener that only listens) and injects raw ones. No sockets, no root, no
// sleeping.

type simHost struct {
	name string
	e    *engine
	ifs  []netIface
	log  *syncBuf
	up   bool
}

type simPkt struct {
	at   time.Time
	from string // host name, or "raw"
	src  netip.AddrPort
	link int // interface index
	dst  netip.AddrPort
	msg  *dns.Msg
}

type sim struct {
	t     *testing.T
	start time.Time
	now   time.Time
	hosts []*simHost
	log   []simPkt
	// peer, if set, sees every packet a host sends and may answer with raw packets.
	peer func(p simPkt) []simPkt
	// heard is what a host that only listens, on each link, receives: the multicast packets.
	heard map[int][]simPkt
	// also is what hosts added from now on advertise besides _lanmsg._tcp.
	also []alsoService
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSim(t *testing.T) *sim {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &sim{t: t, start: start, now: start}
}

// eth is an interface with one IPv4 address on 198.18.<index>.0/24.
func eth(index int, last byte) netIface {
	return netIface{index: index, name: fmt.Sprintf("eth%d", index-2), v4: true,
		prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(index), last}), 24)}}
}

// addHost starts a responder for instance on the given interfaces (eth(2, last) if none).
func (s *sim) addHost(name, instance string, port uint16, last byte, ifs ...netIface) *simHost {
	if len(ifs) == 0 {
		ifs = []netIface{eth(2, last)}
	}
	buf := &syncBuf{}
	log := zerolog.New(zerolog.MultiLevelWriter(buf, zerolog.NewTestWriter(s.t))).With().Str("host", name).Logger()
	e := newEngine(engineConfig{instance: instance, host: name, port: port, txt: []string{"v=1", "id=" + name}, also: s.also,
		log: &log, rnd: rand.New(rand.NewPCG(uint64(len(s.hosts))+1, uint64(last)))})
	h := &simHost{name: name, e: e, ifs: ifs, log: buf, up: true}
	s.hosts = append(s.hosts, h)
	e.setInterfaces(s.now, ifs)
	return h
}

func (h *simHost) addr(link int) netip.Addr {
	for _, ifc := range h.ifs {
		if ifc.index == link {
			return ifc.prefixes[0].Addr()
		}
	}
	return netip.Addr{}
}

// deliver hands p to every host on its link (the sender too, as multicast loopback does),
// or to the unicast destination, and logs it.
func (s *sim) deliver(p simPkt) {
	s.log = append(s.log, p)
	if p.dst.Addr().IsMulticast() {
		if s.heard == nil {
			s.heard = map[int][]simPkt{}
		}
		s.heard[p.link] = append(s.heard[p.link], p)
	}
	b, err := p.msg.Pack()
	if err != nil {
		s.t.Fatalf("pack %v: %v", p.msg, err)
	}
	for _, h := range s.hosts {
		if !h.up || h.addr(p.link) == (netip.Addr{}) {
			continue
		}
		if !p.dst.Addr().IsMulticast() && p.dst.Addr() != h.addr(p.link) {
			continue
		}
		h.e.handle(s.now, inPacket{b: b, ifIndex: p.link, src: p.src})
	}
	if s.peer != nil && p.from != "raw" {
		for _, r := range s.peer(p) {
			s.inject(r)
		}
	}
}

// inject sends a raw packet from a peer that is not an engine.
func (s *sim) inject(p simPkt) {
	p.from, p.at = "raw", s.now
	if p.link == 0 {
		p.link = 2
	}
	if !p.dst.IsValid() {
		p.dst = group4
	}
	s.deliver(p)
	s.flush()
}

// flush delivers everything the hosts have to send, until quiet.
func (s *sim) flush() {
	for i := 0; ; i++ {
		if i > 1000 {
			s.t.Fatal("packet storm")
		}
		sent := false
		for _, h := range s.hosts {
			if !h.up {
				h.e.take()
				continue
			}
			for _, o := range h.e.take() {
				sent = true
				s.deliver(simPkt{at: s.now, from: h.name, src: netip.AddrPortFrom(h.addr(o.ifIndex), mdnsPort), link: o.ifIndex, dst: o.dst, msg: o.msg})
			}
		}
		if !sent {
			return
		}
	}
}

// run advances the clock to d after the start, ticking engines when due.
func (s *sim) run(d time.Duration) {
	until := s.start.Add(d)
	for i := 0; ; i++ {
		if i > 1_000_000 {
			s.t.Fatalf("engines never quiet at %v", s.since(s.now))
		}
		s.flush()
		var next time.Time
		for _, h := range s.hosts {
			if t := h.e.next(); h.up && !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if next.IsZero() || next.After(until) {
			s.now = until
			return
		}
		if next.After(s.now) {
			s.now = next
		}
		for _, h := range s.hosts {
			if t := h.e.next(); h.up && !t.IsZero() && !t.After(s.now) {
				h.e.tick(s.now)
			}
		}
	}
}

// since is the virtual time since the start.
func (s *sim) since(t time.Time) time.Duration { return t.Sub(s.start) }

// sentBy lists the packets a host sent that match.
func (s *sim) sentBy(from string, match func(simPkt) bool) []simPkt {
	var out []simPkt
	for _, p := range s.log {
		if p.from == from && (match == nil || match(p)) {
			out = append(out, p)
		}
	}
	return out
}

func isProbe(p simPkt) bool    { return !p.msg.Response && len(p.msg.Ns) > 0 }
func isResponse(p simPkt) bool { return p.msg.Response }

// asks reports whether a query asks about name.
func asks(p simPkt, name string) bool {
	for _, q := range p.msg.Question {
		if sameName(q.Name, name) {
			return true
		}
	}
	return false
}

// carries reports whether a response has a record of the given type for name with TTL > 0.
func carries(p simPkt, name string, t uint16) bool {
	for _, rr := range append(append([]dns.RR{}, p.msg.Answer...), p.msg.Extra...) {
		if sameName(rr.Header().Name, name) && rr.Header().Rrtype == t && rr.Header().Ttl > 0 {
			return true
		}
	}
	return false
}

func query(id uint16, qs ...dns.Question) *dns.Msg {
	return &dns.Msg{MsgHdr: dns.MsgHdr{Id: id}, Question: qs}
}

func question(name string, t uint16, qu bool) dns.Question {
	q := dns.Question{Name: name, Qtype: t, Qclass: dns.ClassINET}
	if qu {
		q.Qclass |= qclassQU
	}
	return q
}

var querier = netip.MustParseAddrPort("198.18.2.99:5353")

// rival is a response claiming instance for another machine.
func rival(instance string, port uint16) *dns.Msg {
	return &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: []dns.RR{
		&dns.SRV{Hdr: hdr(instanceFQDN(instance), dns.TypeSRV, cacheFlush, 120), Port: port, Target: "rival.local."},
		&dns.TXT{Hdr: hdr(instanceFQDN(instance), dns.TypeTXT, cacheFlush, 120), Txt: []string{"v=1", "id=rival"}},
	}}
}

func warnLines(h *simHost) []string {
	var out []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, `"level":"warn"`) {
			out = append(out, l)
		}
	}
	return out
}
