package discovery

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// Timing of RFC 6762, and our bounds.
const (
	probeCount      = 3                      // section 8.1
	probeInterval   = 250 * time.Millisecond // between probes, and after the last one
	probeJitter     = 250 * time.Millisecond // random delay before the first probe
	tieBreakWait    = time.Second            // a host that loses a tie-break probes again after this (section 8.2)
	conflictWindow  = 10 * time.Second       // section 8.1: after conflictLimit conflicts within this ...
	conflictLimit   = 15                     //
	rateLimitedWait = 5 * time.Second        // ... wait this long between probes
	announceCount   = 3                      // section 8.3
	announceEvery   = time.Second
	minMulticastGap = time.Second            // a record is multicast on an interface at most once a second (section 6)
	probeDefenseGap = 250 * time.Millisecond // except in defence against a probe
	sharedDelayMin  = 20 * time.Millisecond  // multicast answers holding shared records wait 20-120 ms
	sharedDelayMax  = 120 * time.Millisecond
	tcDelayMin      = 400 * time.Millisecond // a truncated query waits 400-500 ms for its known answers (section 7.2)
	tcDelayMax      = 500 * time.Millisecond
	maxTCQueries    = 64 // truncated queries waiting at once; more are answered without waiting
)

type phase uint8

const (
	probing phase = iota
	announcing
	live
)

// linkKey is one interface and address family: probing, announcing, answering and the
// once-a-second limit are per link, as avahi treats them.
type linkKey struct {
	ifIndex int
	v6      bool
}

type link struct {
	key       linkKey
	ifc       netIface
	addrs     []netip.Addr // advertised here
	phase     phase
	sent      int       // probes or announcements sent in this phase
	next      time.Time // next probe or announcement
	lastMcast map[string]time.Time
	pending   []dns.RR // a delayed multicast answer
	pendingX  []dns.RR // its additional records
	pendingAt time.Time
}

func (l *link) dst() netip.AddrPort {
	if l.key.v6 {
		return group6
	}
	return group4
}

// outPacket is a message for the driver to send.
type outPacket struct {
	msg     *dns.Msg
	ifIndex int
	dst     netip.AddrPort
}

// tcQuery is a truncated query waiting for the rest of its known answers.
type tcQuery struct {
	link     *link
	src      netip.AddrPort
	id       uint16
	question []dns.Question
	known    []dns.RR
	at       time.Time
}

// engineConfig is what the responder advertises.
type engineConfig struct {
	instance string // wanted instance name, unescaped
	host     string // wanted host label
	port     uint16
	txt      []string
	addrs    []netip.Addr // override; empty: each interface's own (linkAddrs)
	also     []alsoService
	log      *zerolog.Logger
	rnd      *rand.Rand
}

// engine is the responder's protocol logic (RFC 6762 sections 6 to 10), free of sockets and
// clocks: packets and the time go in (handle, tick, setInterfaces), packets to send come out
// (take), and next says when tick is due. Advertiser drives it over a pconn; tests drive it
// with hand-made packets and a virtual clock.
type engine struct {
	cfg      engineConfig
	log      *zerolog.Logger
	rnd      *rand.Rand
	instance string // current instance name, unescaped
	host     string // current host label
	links    map[linkKey]*link
	out      []outPacket
	closed   bool

	conflicts  []time.Time // conflict times within conflictWindow
	limited    time.Time   // probes are rateLimitedWait apart until then
	lastProbe  time.Time
	tc         map[netip.AddrPort]*tcQuery
	holderSeen bool      // the wanted name's holder has been heard since the rename
	holderExp  time.Time // when the holder's records expire
	holderTTL  time.Duration
	healNext   time.Time // next query asking whether the holder is still there
	reclaim    *reclaimState
}

// reclaimState is the probe for the wanted instance name while renamed.
type reclaimState struct {
	sent int
	next time.Time
}

func newEngine(cfg engineConfig) *engine {
	log := cfg.log
	if log == nil {
		nop := zerolog.Nop()
		log = &nop
	}
	rnd := cfg.rnd
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &engine{cfg: cfg, log: log, rnd: rnd, instance: cfg.instance, host: cfg.host,
		links: map[linkKey]*link{}, tc: map[netip.AddrPort]*tcQuery{}}
}

func (e *engine) names() names {
	return e.namesFor(e.instance)
}

// namesFor are the names of instance: its own, those of the other service types under it,
// and the host's.
func (e *engine) namesFor(instance string) names {
	ns := names{instance: instanceFQDN(instance), host: hostFQDN(e.host)}
	for _, a := range e.cfg.also {
		ns.also = append(ns.also, escapeLabel(instance)+"."+a.fqdn)
	}
	return ns
}

func (e *engine) records(l *link) *recordSet {
	return &recordSet{names: e.names(), port: e.cfg.port, txt: e.cfg.txt, addrs: l.addrs, also: e.cfg.also}
}

func (e *engine) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(e.rnd.Int64N(int64(hi-lo)+1))
}

// take returns the packets to send and forgets them.
func (e *engine) take() []outPacket {
	out := e.out
	e.out = nil
	return out
}

func (e *engine) send(l *link, dst netip.AddrPort, m *dns.Msg) {
	e.out = append(e.out, outPacket{msg: m, ifIndex: l.key.ifIndex, dst: dst})
}

func respMsg(answers, extra []dns.RR) *dns.Msg {
	return &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: answers, Extra: extra, Compress: true}
}

// isLive reports whether probing has succeeded on some interface.
func (e *engine) isLive() bool {
	for _, l := range e.links {
		if l.phase != probing {
			return true
		}
	}
	return false
}

// settled reports whether probing has succeeded on every interface.
func (e *engine) settled() bool {
	for _, l := range e.links {
		if l.phase == probing {
			return false
		}
	}
	return len(e.links) > 0
}

// allAddrs is every address advertised, on any interface.
func (e *engine) allAddrs() []netip.Addr {
	var out []netip.Addr
	for _, l := range e.sortedLinks() {
		out = append(out, l.addrs...)
	}
	return sortAddrs(out)
}

func (e *engine) sortedLinks() []*link {
	ls := make([]*link, 0, len(e.links))
	for _, l := range e.links {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b *link) int {
		if a.key.ifIndex != b.key.ifIndex {
			return a.key.ifIndex - b.key.ifIndex
		}
		if a.key.v6 == b.key.v6 {
			return 0
		}
		if a.key.v6 {
			return 1
		}
		return -1
	})
	return ls
}

// setInterfaces follows the interfaces in use: a new one is probed and announced on, one whose
// addresses changed gets a goodbye for the old addresses and is announced on again, one gone
// is dropped (nothing can be sent on it any more).
func (e *engine) setInterfaces(now time.Time, ifs []netIface) {
	if e.closed {
		return
	}
	seen := map[linkKey]bool{}
	// The links that appear together probe together: one random delay for all of them.
	jitter := time.Duration(-1)
	for _, ifc := range ifs {
		addrs := linkAddrs(ifc, e.cfg.addrs)
		if len(addrs) == 0 {
			continue
		}
		for _, v6 := range []bool{false, true} {
			if (v6 && !ifc.v6) || (!v6 && !ifc.v4) {
				continue
			}
			k := linkKey{ifc.index, v6}
			seen[k] = true
			l := e.links[k]
			if l == nil {
				l = &link{key: k, ifc: ifc, addrs: addrs, lastMcast: map[string]time.Time{}}
				e.links[k] = l
				if jitter < 0 {
					jitter = e.between(0, probeJitter)
				}
				e.startProbe(now, l, jitter)
				e.log.Debug().Str("iface", ifc.name).Bool("ipv6", v6).Strs("addrs", addrStrings(addrs)).Msg("discovery: new interface, probing")
				continue
			}
			l.ifc = ifc
			if slices.Equal(l.addrs, addrs) {
				continue
			}
			var gone []netip.Addr
			for _, a := range l.addrs {
				if !slices.Contains(addrs, a) {
					gone = append(gone, a)
				}
			}
			old := l.addrs
			l.addrs = addrs
			e.log.Info().Str("iface", ifc.name).Strs("old", addrStrings(old)).Strs("new", addrStrings(addrs)).Msg("discovery: interface addresses changed; announcing the new ones")
			if l.phase == probing {
				continue
			}
			if len(gone) > 0 {
				rs := e.records(l)
				rs.addrs = gone
				e.send(l, l.dst(), respMsg(rs.addrRRs(0, cacheFlush, true, true), nil))
			}
			l.phase, l.sent, l.next = announcing, 0, now
			clear(l.lastMcast)
		}
	}
	for k, l := range e.links {
		if !seen[k] {
			e.log.Info().Str("iface", l.ifc.name).Bool("ipv6", k.v6).Msg("discovery: interface gone; no longer advertising on it")
			delete(e.links, k)
		}
	}
}

// startProbe (re)starts probing on l after delay, or later when conflicts are too frequent.
func (e *engine) startProbe(now time.Time, l *link, delay time.Duration) {
	l.phase, l.sent, l.next = probing, 0, now.Add(delay)
	l.pending, l.pendingX = nil, nil
	if e.rateLimited(now) {
		if t := e.lastProbe.Add(rateLimitedWait); t.After(l.next) {
			l.next = t
		}
	}
}

// rateLimited reports whether probes must be rateLimitedWait apart: from the time
// conflictLimit conflicts happened within conflictWindow until conflictWindow passes without one.
func (e *engine) rateLimited(now time.Time) bool { return now.Before(e.limited) }

// next is when tick has work to do (zero: nothing scheduled).
func (e *engine) next() time.Time {
	var t time.Time
	at := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if e.closed {
		return t
	}
	for _, l := range e.links {
		if l.phase != live {
			at(l.next)
		}
		at(l.pendingAt)
	}
	for _, q := range e.tc {
		at(q.at)
	}
	if e.renamed() && e.isLive() {
		if e.reclaim != nil {
			at(e.reclaim.next)
		} else {
			at(e.healNext)
			at(e.holderExp)
		}
	}
	return t
}

// tick does the work due at now: probes, announcements, delayed answers, truncated queries
// whose wait is over, and the healing of a renamed instance.
func (e *engine) tick(now time.Time) {
	if e.closed {
		return
	}
	for _, l := range e.sortedLinks() {
		switch {
		case l.phase == probing && !now.Before(l.next):
			if l.sent == probeCount {
				l.phase, l.sent, l.next = announcing, 0, now
				e.log.Debug().Str("iface", l.ifc.name).Str("instance", e.instance).Str("host", e.host).Msg("discovery: probing done, announcing")
			} else {
				e.sendProbe(l, e.names())
				e.lastProbe = now
				l.sent++
				l.next = now.Add(probeInterval)
			}
		}
		if l.phase == announcing && !now.Before(l.next) {
			rs := e.records(l)
			e.multicast(now, l, rs.all(recordTTL), nil)
			l.sent++
			if l.sent == announceCount {
				l.phase, l.next = live, time.Time{}
			} else {
				l.next = now.Add(announceEvery)
			}
		}
		if !l.pendingAt.IsZero() && !now.Before(l.pendingAt) {
			a, x := l.pending, l.pendingX
			l.pending, l.pendingX, l.pendingAt = nil, nil, time.Time{}
			if l.phase != probing {
				e.multicastAnswer(now, l, a, x, minMulticastGap)
			}
		}
	}
	for src, q := range e.tc {
		if !now.Before(q.at) {
			delete(e.tc, src)
			if _, ok := e.links[q.link.key]; ok {
				e.answer(now, q.link, q.src, q.id, q.question, q.known, false)
			}
		}
	}
	e.heal(now)
}

// sendProbe multicasts a probe for ns on l: ANY questions for the instance and host names,
// with the records we propose in the authority section (RFC 6762 section 8.1). The questions
// are QM: the holder's answer is then multicast, which every socket on port 5353 receives.
func (e *engine) sendProbe(l *link, ns names) {
	rs := e.records(l)
	rs.names = ns
	class := uint16(dns.ClassINET)
	m := &dns.Msg{Compress: true}
	m.Question = []dns.Question{{Name: ns.instance, Qtype: dns.TypeANY, Qclass: class}, {Name: ns.host, Qtype: dns.TypeANY, Qclass: class}}
	for _, n := range ns.also {
		m.Question = append(m.Question, dns.Question{Name: n, Qtype: dns.TypeANY, Qclass: class})
	}
	m.Ns = rs.unique(recordTTL)
	for _, rr := range m.Ns {
		rr.Header().Class = dns.ClassINET // no cache-flush bit in probes' authority section
	}
	e.send(l, l.dst(), m)
}

// multicast sends records on l's group now and notes when.
func (e *engine) multicast(now time.Time, l *link, answers, extra []dns.RR) {
	for _, rr := range answers {
		l.lastMcast[rrKey(rr)] = now
	}
	e.send(l, l.dst(), respMsg(answers, extra))
}

// multicastAnswer multicasts what was not multicast on l within gap.
func (e *engine) multicastAnswer(now time.Time, l *link, answers, extra []dns.RR, gap time.Duration) {
	var keep []dns.RR
	for _, rr := range answers {
		if t, ok := l.lastMcast[rrKey(rr)]; ok && now.Sub(t) < gap {
			continue
		}
		keep = append(keep, rr)
	}
	if len(keep) == 0 {
		return
	}
	e.multicast(now, l, keep, dedupe(extra, keep))
}

// handle processes one received packet.
func (e *engine) handle(now time.Time, in inPacket) {
	if e.closed {
		return
	}
	l := e.links[linkKey{in.ifIndex, !in.src.Addr().Unmap().Is4()}]
	if l == nil {
		return
	}
	p, err := parsePacket(in.b)
	if err != nil || p.opcode != 0 {
		return
	}
	p.src = in.src
	if p.response {
		if in.src.Port() == mdnsPort && p.rcode == 0 {
			e.response(now, l, p)
		}
		return
	}
	e.query(now, l, p)
}

// query handles a query on l: the tie-break against a simultaneous probe, and the answer.
func (e *engine) query(now time.Time, l *link, p *packet) {
	var known, auth []dns.RR
	for _, r := range p.records {
		switch r.sec {
		case secAnswer:
			known = append(known, r.rr)
		case secAuthority:
			auth = append(auth, r.rr)
		}
	}
	if q := e.tc[p.src]; q != nil && len(p.question) == 0 {
		// The rest of a truncated query's known answers (section 7.2).
		q.known = append(q.known, known...)
		if p.tc {
			q.at = now.Add(e.between(tcDelayMin, tcDelayMax))
		}
		return
	}
	if len(auth) > 0 {
		e.tieBreak(now, l, p.src, auth)
	}
	if l.phase == probing || len(p.question) == 0 {
		return
	}
	if p.tc && p.src.Port() == mdnsPort && len(e.tc) < maxTCQueries {
		e.tc[p.src] = &tcQuery{link: l, src: p.src, id: p.id, question: p.question, known: known,
			at: now.Add(e.between(tcDelayMin, tcDelayMax))}
		return
	}
	e.answer(now, l, p.src, p.id, p.question, known, len(auth) > 0)
}

// answer answers questions from src on l, leaving out the known answers: at once by unicast
// for a legacy query (echoing its ID and questions, TTL at most 10 s) and for QU questions;
// by multicast for QM questions, at once for unique records and after 20-120 ms when the
// answer holds a shared one, never repeating a record multicast on l within the last second
// (250 ms when defending against a probe).
func (e *engine) answer(now time.Time, l *link, src netip.AddrPort, id uint16, qs []dns.Question, known []dns.RR, probe bool) {
	legacy := src.Port() != mdnsPort
	rs := e.records(l)
	knownTTL := map[string]uint32{}
	for _, rr := range known {
		k := rrKey(rr)
		knownTTL[k] = max(knownTTL[k], rr.Header().Ttl)
	}
	suppressed := func(rr dns.RR) bool {
		if len(knownTTL) == 0 {
			return false
		}
		ttl, ok := knownTTL[rrKey(rr)]
		return ok && ttl >= rr.Header().Ttl/2 // section 7.1
	}
	var ua, ux, ma, mx []dns.RR
	for _, q := range qs {
		a, x := rs.answer(dns.Question{Name: q.Name, Qtype: q.Qtype, Qclass: q.Qclass &^ qclassQU})
		a = slices.DeleteFunc(a, suppressed)
		if len(a) == 0 {
			continue
		}
		x = slices.DeleteFunc(x, suppressed)
		if legacy || q.Qclass&qclassQU != 0 {
			ua, ux = append(ua, a...), append(ux, x...)
		} else {
			ma, mx = append(ma, a...), append(mx, x...)
		}
	}
	ua = dedupe(ua, nil)
	ux = dedupe(ux, ua)
	if len(ua) > 0 {
		m := respMsg(ua, ux)
		if legacy {
			m.Id = id
			for _, q := range qs {
				m.Question = append(m.Question, dns.Question{Name: q.Name, Qtype: q.Qtype, Qclass: q.Qclass &^ qclassQU})
			}
			for _, rr := range append(slices.Clone(ua), ux...) {
				h := rr.Header()
				h.Ttl = min(h.Ttl, legacyTTL)
				h.Class &^= cacheFlush
			}
		}
		e.send(l, src, m)
	}
	ma = dedupe(ma, nil)
	mx = dedupe(mx, ma)
	if len(ma) == 0 {
		return
	}
	if probe {
		e.multicastAnswer(now, l, ma, mx, probeDefenseGap)
		return
	}
	if !slices.ContainsFunc(ma, shared) {
		e.multicastAnswer(now, l, ma, mx, minMulticastGap)
		return
	}
	l.pending = dedupe(append(l.pending, ma...), nil)
	l.pendingX = dedupe(append(l.pendingX, mx...), l.pending)
	if at := now.Add(e.between(sharedDelayMin, sharedDelayMax)); l.pendingAt.IsZero() || at.Before(l.pendingAt) {
		l.pendingAt = at
	}
}

// dedupe returns rrs without repeats and without the records in minus.
func dedupe(rrs, minus []dns.RR) []dns.RR {
	seen := map[string]bool{}
	for _, rr := range minus {
		seen[rrKey(rr)] = true
	}
	out := rrs[:0:0]
	for _, rr := range rrs {
		if k := rrKey(rr); !seen[k] {
			seen[k] = true
			out = append(out, rr)
		}
	}
	return out
}

// tieBreak compares a probe's proposed records (auth) with ours for the names we are probing
// (section 8.2). The lexicographically later set wins; the loser waits a second and probes
// again, and then the winner's answers make it rename. A host-name probe that shares an
// address with ours is this machine, not a rival.
func (e *engine) tieBreak(now time.Time, l *link, src netip.AddrPort, auth []dns.RR) {
	if e.reclaim != nil {
		want := e.namesFor(e.cfg.instance)
		rs := e.records(l)
		rs.names = want
		if theirs := recordsNamed(auth, want.instance); len(theirs) > 0 && compareSets(rs.unique(recordTTL)[:2], theirs) < 0 {
			e.log.Debug().Str("from", src.String()).Msg("discovery: lost a tie-break for the wanted name; not taking it back yet")
			e.reclaim = nil
			e.holderSeen, e.holderExp, e.healNext = true, now.Add(time.Minute), now.Add(time.Second)
		}
	}
	if l.phase != probing {
		return
	}
	ns := e.names()
	rs := e.records(l)
	lost := false
	if theirs := recordsNamed(auth, ns.instance); len(theirs) > 0 && compareSets(rs.unique(recordTTL)[:2], theirs) < 0 {
		lost = true
	}
	if theirs := recordsNamed(auth, ns.host); len(theirs) > 0 && !sharesAddr(theirs, e.allAddrs()) &&
		compareSets(rs.addrRRs(recordTTL, 0, true, true), theirs) < 0 {
		lost = true
	}
	if lost {
		e.log.Debug().Str("from", src.String()).Str("instance", e.instance).Msg("discovery: lost a simultaneous-probe tie-break; probing again in 1s")
		for _, l := range e.links {
			if l.phase == probing {
				e.startProbe(now, l, tieBreakWait)
			}
		}
	}
}

func recordsNamed(rrs []dns.RR, name string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if sameName(rr.Header().Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

// sharesAddr reports whether any A/AAAA record in rrs holds one of addrs.
func sharesAddr(rrs []dns.RR, addrs []netip.Addr) bool {
	for _, rr := range rrs {
		if a, ok := rrAddr(rr); ok && slices.Contains(addrs, a) {
			return true
		}
	}
	return false
}

func rrAddr(rr dns.RR) (netip.Addr, bool) {
	var a netip.Addr
	var ok bool
	switch x := rr.(type) {
	case *dns.A:
		a, ok = netip.AddrFromSlice(x.A)
	case *dns.AAAA:
		a, ok = netip.AddrFromSlice(x.AAAA)
	}
	return a.Unmap(), ok
}

// response looks in a response on l for records that conflict with ours (sections 8.1 and 9)
// and for news of the holder of the name we want back.
func (e *engine) response(now time.Time, l *link, p *packet) {
	ns := e.names()
	var ours map[string]bool // our records on l, built when a record has our name
	isOurs := func(rr dns.RR) bool {
		if ours == nil {
			ours = map[string]bool{}
			for _, o := range e.records(l).all(recordTTL) {
				ours[rrKey(o)] = true
			}
		}
		return ours[rrKey(rr)]
	}
	wanted := ""
	if e.renamed() {
		wanted = instanceFQDN(e.cfg.instance)
	}
	instConflict := false
	holder := ""
	var hostAddrs []dns.RR
	for _, r := range p.records {
		if r.sec == secAuthority {
			continue
		}
		h := r.rr.Header()
		switch {
		case wanted != "" && sameName(h.Name, wanted):
			e.holderNews(now, r.rr)
		case sameName(h.Name, ns.instance) || ns.isAlso(h.Name):
			if h.Ttl == 0 || isOurs(r.rr) {
				continue
			}
			if h.Rrtype == dns.TypeSRV || h.Rrtype == dns.TypeTXT {
				instConflict = true
				if srv, ok := r.rr.(*dns.SRV); ok {
					holder = srv.Target
				}
			}
		case sameName(h.Name, ns.host):
			if h.Ttl > 0 && (h.Rrtype == dns.TypeA || h.Rrtype == dns.TypeAAAA) {
				hostAddrs = append(hostAddrs, r.rr)
			}
		}
	}
	hostConflict := len(hostAddrs) > 0 && !sharesAddr(hostAddrs, e.allAddrs())
	if !instConflict && !hostConflict {
		return
	}
	who := p.src.Addr().String()
	if holder != "" {
		who = holder + " at " + who
	}
	e.conflict(now, instConflict, hostConflict, who)
}

// conflict handles a conflicting answer. While probing, the names in conflict are renamed and
// probed again; after announcing (section 9) every interface goes back to probing the same
// names, so that the probes settle who keeps them. Conflicts never make it give up: past
// conflictLimit within conflictWindow, probes are rateLimitedWait apart.
func (e *engine) conflict(now time.Time, inst, host bool, who string) {
	e.conflicts = append(slices.DeleteFunc(e.conflicts, func(t time.Time) bool { return now.Sub(t) >= conflictWindow }), now)
	if len(e.conflicts) >= conflictLimit || e.rateLimited(now) {
		e.limited = now.Add(conflictWindow)
	}
	probingNow := false
	for _, l := range e.links {
		probingNow = probingNow || l.phase == probing
	}
	if !probingNow {
		e.log.Warn().Str("name", e.instance).Str("host", e.host+".local.").Str("held_by", who).
			Msg("discovery: another machine answers for our name; probing again to settle who keeps it")
	} else {
		old, oldHost := e.instance, e.host
		if inst {
			e.instance = nextName(e.instance)
		}
		if host {
			e.host = nextHost(e.host)
		}
		ev := e.log.Warn().Str("held_by", who)
		if inst {
			ev = ev.Str("name", old).Str("new_name", e.instance)
		}
		if host {
			ev = ev.Str("host", oldHost+".local.").Str("new_host", e.host+".local.")
		}
		if e.rateLimited(now) {
			ev = ev.Dur("probe_every", rateLimitedWait)
		}
		ev.Msg("discovery: name in use by another machine; renamed")
		if inst && e.renamed() && !e.holderSeen {
			e.holderSeen, e.holderExp = true, now.Add(recordTTL*time.Second)
			e.healNext = now.Add(recordTTL * time.Second * 8 / 10)
		}
	}
	for _, l := range e.links {
		e.startProbe(now, l, 0)
	}
}

// renamed reports whether the instance name is not the one wanted.
func (e *engine) renamed() bool { return e.instance != e.cfg.instance }

// holderNews notes a record of the wanted name seen while renamed: a goodbye starts taking
// the name back at once, anything else is the holder still there.
func (e *engine) holderNews(now time.Time, rr dns.RR) {
	ttl := time.Duration(rr.Header().Ttl) * time.Second
	if ttl == 0 {
		if e.reclaim == nil {
			e.log.Debug().Str("name", e.cfg.instance).Msg("discovery: the holder of our name said goodbye; taking it back")
			e.reclaim = &reclaimState{next: now}
		}
		return
	}
	if e.reclaim != nil {
		e.log.Debug().Str("name", e.cfg.instance).Msg("discovery: the wanted name is still held; not taking it back")
		e.reclaim = nil
	}
	e.holderSeen = true
	e.holderTTL = ttl
	e.holderExp = now.Add(ttl)
	e.healNext = now.Add(ttl * 8 / 10)
}

// heal keeps asking for the wanted name while renamed: it queries the holder's SRV at 80%,
// 85%, 90% and 95% of its TTL (as a cache refreshing it would, section 5.2), and when the
// records expire or the holder says goodbye it probes the wanted name on every live interface;
// if nobody answers, it takes the name back.
func (e *engine) heal(now time.Time) {
	if !e.renamed() || !e.isLive() {
		e.reclaim = nil
		return
	}
	want := e.namesFor(e.cfg.instance)
	if e.reclaim == nil {
		if !e.holderSeen {
			e.holderSeen, e.holderTTL, e.holderExp, e.healNext = true, 5*time.Second, now.Add(5*time.Second), now
		}
		if !now.Before(e.holderExp) {
			e.reclaim = &reclaimState{next: now}
		} else if !e.healNext.IsZero() && !now.Before(e.healNext) {
			m := &dns.Msg{Question: []dns.Question{{Name: want.instance, Qtype: dns.TypeSRV, Qclass: dns.ClassINET}}}
			for _, l := range e.sortedLinks() {
				if l.phase != probing {
					e.send(l, l.dst(), m.Copy())
				}
			}
			e.healNext = now.Add(max(e.holderTTL/20, time.Second))
			return
		}
	}
	r := e.reclaim
	if r == nil || now.Before(r.next) {
		return
	}
	if r.sent < probeCount {
		for _, l := range e.sortedLinks() {
			if l.phase != probing {
				e.sendProbe(l, want)
			}
		}
		r.sent++
		r.next = now.Add(probeInterval)
		return
	}
	// Nobody holds it any more: withdraw the stand-in name and take the wanted one.
	for _, l := range e.sortedLinks() {
		if l.phase != probing {
			e.send(l, l.dst(), respMsg(e.records(l).goodbye(), nil))
		}
	}
	e.log.Warn().Str("name", e.cfg.instance).Str("was", e.instance).Msg("discovery: took our name back (its holder left)")
	e.instance = e.cfg.instance
	e.reclaim, e.holderSeen = nil, false
	for _, l := range e.links {
		if l.phase != probing {
			l.phase, l.sent, l.next = announcing, 0, now
			clear(l.lastMcast)
		}
	}
}

// close stops answering and sends goodbyes on every interface where we were announced.
func (e *engine) close() {
	if e.closed {
		return
	}
	for _, l := range e.sortedLinks() {
		if l.phase != probing {
			e.send(l, l.dst(), respMsg(e.records(l).goodbye(), nil))
		}
	}
	e.closed = true
}

// service describes what is advertised now.
func (e *engine) service() Service {
	return Service{Instance: e.instance, Host: hostFQDN(e.host), Addrs: e.allAddrs(), Port: int(e.cfg.port), TXT: parseTXT(e.cfg.txt)}
}
