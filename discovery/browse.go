package discovery

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

const (
	firstRequery  = 200 * time.Millisecond // PTR queries at 0, 200ms, 600ms, 1.4s, 3s, ...
	maxRequery    = time.Minute
	firstFollowUp = 250 * time.Millisecond // follow-up questions for incomplete instances
	maxFollowUp   = 4 * time.Second
	maxFollowUps  = 3                // rounds of follow-up questions per instance (at 0, 250ms, 750ms), then it gives up
	poofWindow    = 10 * time.Second // passive observation of failure (RFC 6762 section 10.5)

	// Bounds that keep a hostile or broken responder from making browse state, per-packet
	// work or our own queries grow without limit.
	maxInstances = 1024                  // instances tracked at once, reported ones included
	maxPerSource = 256                   // of which one source address may have introduced
	maxTXTBytes  = 1300                  // TXT data kept per instance (RFC 6763 section 6.2); the rest is ignored
	maxQuestions = 16                    // questions in one follow-up query; the rest wait for later ones
	maxQueryLen  = 1400                  // bytes in one follow-up query: fits an Ethernet frame unfragmented
	followUpGap  = 25 * time.Millisecond // least time between two follow-up queries
)

// BrowseConfig configures Browse and Watch.
type BrowseConfig struct {
	// Interfaces restricts mDNS to these interfaces (by name); empty: every interface that is
	// up and multicast-capable.
	Interfaces []string
	Log        *zerolog.Logger // library logs go here at debug level; nil: no logging
}

// EventKind says what happened to a server being watched.
type EventKind uint8

const (
	Added   EventKind = iota + 1 // first seen, complete
	Changed                      // its addresses, port or TXT changed
	Removed                      // it said goodbye, or its records expired unrefreshed
)

func (k EventKind) String() string {
	switch k {
	case Added:
		return "add"
	case Changed:
		return "change"
	case Removed:
		return "remove"
	}
	return "?"
}

// Event is one change seen by Watch.
type Event struct {
	Kind    EventKind
	Service Service // for Removed: as last seen
}

// Browse queries for _lanmsg._tcp.local. (the first query at once, then again at growing
// intervals) on every interface in use, over IPv4 and IPv6, resolves each instance (SRV, TXT,
// A/AAAA, asking follow-up questions while an answer is incomplete) and calls found once per
// instance, as soon as it is complete, always from the goroutine that called Browse. It
// returns nil when ctx is done, or an error if it cannot set up (for example no
// multicast-capable interface) or cannot send its first query on any interface (for example
// a firewall blocks it).
func Browse(ctx context.Context, cfg BrowseConfig, found func(Service)) error {
	return browse(ctx, cfg, false, func(ev Event) {
		if ev.Kind == Added {
			found(ev.Service)
		}
	})
}

// Watch is Browse that goes on reporting: each server once when it appears (Added), then when
// its addresses, port or TXT change (Changed) and when it leaves (Removed: a goodbye, its
// records expiring without an answer to the queries that refresh them, RFC 6762 section 5.2,
// or others' questions for it going unanswered, section 10.5).
func Watch(ctx context.Context, cfg BrowseConfig, event func(Event)) error {
	return browse(ctx, cfg, true, event)
}

func browse(ctx context.Context, cfg BrowseConfig, watch bool, event func(Event)) error {
	log := cfg.Log
	if log == nil {
		nop := zerolog.Nop()
		log = &nop
	}
	if err := ctx.Err(); err != nil {
		return nil
	}
	conn, err := openSysConn(cfg.Interfaces, true, log)
	if err != nil {
		return fmt.Errorf("discovery: browse: %w", err)
	}
	return browseOn(ctx, conn, log, watch, event)
}

// browseOn browses over conn, and closes it.
func browseOn(ctx context.Context, conn pconn, log *zerolog.Logger, watch bool, event func(Event)) error {
	defer func() { _ = conn.close() }()
	b := &browser{log: log, conn: conn, watch: watch, event: event}
	ifs := conn.interfaces()
	if err := usableIfaces(ifs, nil); err != nil {
		return fmt.Errorf("discovery: browse: %w", err)
	}
	b.setInterfaces(ifs)
	return b.run(ctx)
}

type instState struct {
	src      netip.Addr // the source that introduced it (maxPerSource)
	ifIndex  int        // interface of the packet its addresses came from
	expires  time.Time  // when its PTR/SRV expire unless refreshed (watch)
	refresh  int        // refresh queries sent since last refreshed (watch)
	poof     int        // others' unanswered queries for its SRV since poofFrom (watch)
	poofFrom time.Time
	key      string // lower-cased instance FQDN, the key in browser.insts
	name     string // unescaped instance name
	fqdn     string
	haveSRV  bool
	host     string
	hostKey  string // lower-cased host under which it is in browser.byHost (if it is)
	port     int
	haveTXT  bool
	txt      map[string]string
	addrs    []netip.Addr
	reported bool
	ttl      time.Duration // of the record that set expires
	nextAsk  time.Time     // zero: not scheduled
	askEvery time.Duration
	asks     int
	gaveUp   bool // asked maxFollowUps times without becoming complete
	gone     bool // no longer in browser.insts (goodbye or evicted)
}

func (s *instState) complete() bool { return s.haveSRV && s.haveTXT && len(s.addrs) > 0 }

// questions are what s still lacks: SRV and TXT, and/or the addresses of its host.
func (s *instState) questions() []dns.Question {
	var qs []dns.Question
	if !s.haveSRV || !s.haveTXT {
		qs = append(qs,
			dns.Question{Name: s.fqdn, Qtype: dns.TypeSRV, Qclass: dns.ClassINET},
			dns.Question{Name: s.fqdn, Qtype: dns.TypeTXT, Qclass: dns.ClassINET})
	}
	if s.haveSRV && len(s.addrs) == 0 {
		qs = append(qs,
			dns.Question{Name: s.host, Qtype: dns.TypeA, Qclass: dns.ClassINET},
			dns.Question{Name: s.host, Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	}
	return qs
}

// browser is Browse's state. It tracks at most maxInstances instances; the work for one
// packet is proportional to its records (instances are found through maps, by instance name
// and by host name), and the work per wake-up is bounded by maxInstances.
type browser struct {
	log    *zerolog.Logger
	conn   pconn
	ifaces map[int]netIface // by index, for zones and address order
	watch  bool
	bySrc  map[netip.Addr]int             // instances in insts by introducing source
	insts  map[string]*instState          // key: lower-cased instance FQDN
	byHost map[string]map[*instState]bool // unreported instances with an SRV, by lower-cased target
	asking map[*instState]bool            // instances with a follow-up scheduled (nextAsk set)
	stale  int                            // unreported instances in insts that gave up asking
	full   bool                           // "too many instances" was logged
	quiet  time.Time                      // no follow-up query before this (followUpGap)
	event  func(Event)
	events []Event // of the packet being handled
	now    time.Time
}

// init makes the zero browser (as unit tests build it) usable.
func (b *browser) init() {
	if b.log == nil {
		nop := zerolog.Nop()
		b.log = &nop
	}
	if b.insts == nil {
		b.insts = map[string]*instState{}
	}
	if b.byHost == nil {
		b.byHost = map[string]map[*instState]bool{}
	}
	if b.asking == nil {
		b.asking = map[*instState]bool{}
	}
	if b.bySrc == nil {
		b.bySrc = map[netip.Addr]int{}
	}
	if b.ifaces == nil {
		b.ifaces = map[int]netIface{}
	}
	if b.now.IsZero() {
		b.now = time.Now()
	}
}

func (b *browser) run(ctx context.Context) error {
	b.init()
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: serviceFQDN, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	ptrQuery, err := q.Pack()
	if err != nil {
		return fmt.Errorf("discovery: browse: pack query: %w", err)
	}
	pkts := make(chan inPacket, 64)
	go func() {
		for {
			p, err := b.conn.read()
			if err != nil {
				close(pkts)
				return
			}
			select {
			case pkts <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	if b.ifaces == nil {
		b.setInterfaces(b.conn.interfaces())
	}
	nextPTR, every := time.Now(), firstRequery
	nextPoll := time.Now().Add(pollInterfaces)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for first := true; ; first = false {
		now := time.Now()
		b.now = now
		if !now.Before(nextPoll) {
			b.setInterfaces(b.conn.interfaces())
			nextPoll = now.Add(pollInterfaces)
		}
		if !now.Before(nextPTR) {
			if err := b.send(ptrQuery); err != nil && first {
				// Not one copy of the first query went out (a firewall, or
				// macOS's Local Network permission): nothing can answer, so
				// say why rather than find nothing.
				return fmt.Errorf("discovery: browse: send query: %w", err)
			}
			nextPTR = now.Add(every)
			every = min(every*2, maxRequery)
		}
		b.followUps(now)
		wake := nextPTR
		if nextPoll.Before(wake) {
			wake = nextPoll
		}
		if t, ok := b.nextFollowUp(); ok && t.Before(wake) {
			wake = t
		}
		if b.watch {
			if t := b.maintain(now); !t.IsZero() && t.Before(wake) {
				wake = t
			}
			if !b.emit(ctx) {
				return nil
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(wake))

		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case in, ok := <-pkts:
			if !ok {
				return nil
			}
			p, err := parsePacket(in.b)
			if err != nil {
				b.log.Debug().Err(err).Str("from", in.src.String()).Msg("discovery: unreadable packet")
				continue
			}
			p.src, p.ifIndex = in.src, in.ifIndex
			b.now = time.Now()
			b.handle(p)
			if !b.emit(ctx) {
				return nil
			}
		}
	}
}

// emit hands the pending events to the caller; false when ctx ended meanwhile.
func (b *browser) emit(ctx context.Context) bool {
	evs := b.events
	b.events = nil
	for _, ev := range evs {
		if ctx.Err() != nil {
			return false
		}
		b.event(ev)
	}
	return ctx.Err() == nil
}

// send multicasts a query on every interface in use, over each family it carries. It fails
// only when not one copy went out.
func (b *browser) send(pk []byte) error {
	var firstErr error
	sent := 0
	for _, ifc := range b.ifaces {
		for _, dst := range []netip.AddrPort{group4, group6} {
			if (dst == group4 && !ifc.v4) || (dst == group6 && !ifc.v6) {
				continue
			}
			if err := b.conn.write(pk, ifc.index, dst); err != nil {
				b.log.Debug().Err(err).Str("iface", ifc.name).Str("to", dst.String()).Msg("discovery: send query")
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", ifc.name, err)
				}
				continue
			}
			sent++
		}
	}
	if sent == 0 && firstErr != nil {
		return firstErr
	}
	return nil
}

func (b *browser) setInterfaces(ifs []netIface) {
	b.ifaces = make(map[int]netIface, len(ifs))
	for _, ifc := range ifs {
		b.ifaces[ifc.index] = ifc
	}
}

// maintain (watch only) removes reported instances whose records expired, and sends the
// queries that refresh them at 80%, 85%, 90% and 95% of their TTL (RFC 6762 section 5.2). It
// returns when it next has work.
func (b *browser) maintain(now time.Time) time.Time {
	var wake time.Time
	var refresh []dns.Question
	for _, s := range b.insts {
		if !s.reported || s.expires.IsZero() {
			continue
		}
		if !now.Before(s.expires) {
			b.remove(s)
			continue
		}
		if s.poof > 0 {
			if end := s.poofFrom.Add(poofWindow); !now.Before(end) {
				if s.poof >= 2 {
					b.remove(s)
					continue
				}
				s.poof = 0
			} else if wake.IsZero() || end.Before(wake) {
				wake = end
			}
		}
		at := s.refreshAt()
		if !now.Before(at) && s.refresh < 4 && len(refresh) < maxQuestions {
			refresh = append(refresh, dns.Question{Name: s.fqdn, Qtype: dns.TypeSRV, Qclass: dns.ClassINET})
			s.refresh++
			at = s.refreshAt()
		}
		for _, t := range []time.Time{at, s.expires} {
			if t.After(now) && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
	}
	if len(refresh) > 0 {
		m := &dns.Msg{Question: refresh, Compress: true}
		if pk, err := m.Pack(); err == nil {
			_ = b.send(pk) // logged; the next refresh tries again
		}
	}
	return wake
}

// refreshAt is when the next refresh query for s is due (after the last one: expiry).
func (s *instState) refreshAt() time.Time {
	if s.refresh >= 4 {
		return s.expires
	}
	return s.expires.Add(-s.ttl + s.ttl*time.Duration(80+5*s.refresh)/100)
}

// remove reports a reported instance gone and forgets it (watch).
func (b *browser) remove(s *instState) {
	b.events = append(b.events, Event{Kind: Removed, Service: s.service()})
	s.reported = false
	b.forget(s)
}

func (s *instState) service() Service {
	return Service{Instance: s.name, Host: s.host, Addrs: s.addrs, Port: s.port, TXT: s.txt}
}

// handle applies one packet and returns the instances it completed (Added events; in watch
// mode Changed and Removed events are queued too).
func (b *browser) handle(p *packet) []Service {
	if !p.response && p.opcode == 0 {
		b.init()
		b.observeQuery(p)
		return nil
	}
	if !p.response || p.opcode != 0 || p.rcode != 0 {
		return nil
	}
	b.init()
	now := b.now
	fromLoopback := p.src.Addr().IsLoopback()
	ifc, known := b.ifaces[p.ifIndex]
	hostAddrs := map[string][]netip.Addr{}
	touched := map[*instState]bool{}
	changed := map[*instState]bool{}
	srvIn := map[*instState]bool{}
	for _, r := range p.records {
		if r.sec == secAuthority {
			continue
		}
		h := r.rr.Header()
		switch rr := r.rr.(type) {
		case *dns.A, *dns.AAAA:
			if h.Ttl == 0 {
				continue
			}
			a, _ := rrAddr(rr)
			if !usableAddr(a, fromLoopback, ifc) {
				continue
			}
			if a.Is6() && a.IsLinkLocalUnicast() {
				if !known {
					continue // a link-local address needs the zone of the interface it came from
				}
				a = a.WithZone(ifc.name)
			}
			k := strings.ToLower(h.Name)
			hostAddrs[k] = append(hostAddrs[k], a)
		case *dns.PTR:
			if !sameName(h.Name, serviceFQDN) {
				continue
			}
			name, ok := parseInstanceFQDN(rr.Ptr)
			if !ok {
				continue
			}
			key := strings.ToLower(rr.Ptr)
			if h.Ttl == 0 { // goodbye
				b.goodbye(b.insts[key])
				continue
			}
			if s := b.inst(key, name, rr.Ptr, p.src.Addr()); s != nil {
				s.seen(now, h.Ttl)
				touched[s] = true
			}
		case *dns.SRV:
			if h.Ttl == 0 {
				if name, ok := parseInstanceFQDN(h.Name); ok && name != "" {
					b.goodbye(b.insts[strings.ToLower(h.Name)])
				}
				continue
			}
			if rr.Port == 0 {
				continue // nothing listens on port 0: a broken or hostile answer
			}
			s := b.recordInst(h, p.src.Addr())
			if s == nil {
				continue
			}
			if !s.haveSRV || !sameName(s.host, rr.Target) {
				s.addrs = nil // addresses belong to the host named by the latest SRV
			}
			if s.reported && (s.port != int(rr.Port) || !sameName(s.host, rr.Target)) {
				changed[s] = true
			}
			s.haveSRV, s.host, s.port = true, rr.Target, int(rr.Port)
			s.seen(now, h.Ttl)
			s.poof = 0
			srvIn[s] = true
			b.indexHost(s)
			touched[s] = true
		case *dns.TXT:
			s := b.recordInst(h, p.src.Addr())
			if s == nil {
				continue
			}
			txt := parseTXT(capTXT(rr.Txt))
			if s.reported && !maps.Equal(txt, s.txt) {
				changed[s] = true
			}
			s.haveTXT, s.txt = true, txt
			touched[s] = true
		}
	}
	// Addresses are taken from one packet only, preferably the one that carried the SRV:
	// never a union over packets, which could mix two machines that share a host name.
	for k, as := range hostAddrs {
		for s := range b.byHost[k] {
			if len(s.addrs) == 0 {
				s.addrs = rankAddrs(as, ifc)
				s.ifIndex = p.ifIndex
				touched[s] = true
			}
		}
	}
	if b.watch {
		// A reported instance takes new addresses from a packet that also carries its SRV.
		for s := range srvIn {
			if !s.reported {
				continue
			}
			if as := hostAddrs[strings.ToLower(s.host)]; len(as) > 0 {
				as = rankAddrs(as, ifc)
				if !slices.Equal(as, s.addrs) && (s.ifIndex == p.ifIndex || len(s.addrs) == 0) {
					s.addrs, s.ifIndex = as, p.ifIndex
					changed[s] = true
				}
			}
		}
	}
	var done []Service
	for s := range touched {
		if s.gone {
			continue
		}
		if s.reported {
			if changed[s] && s.complete() {
				b.events = append(b.events, Event{Kind: Changed, Service: s.service()})
			}
			continue
		}
		if s.complete() {
			b.report(s)
			svc := s.service()
			done = append(done, svc)
			b.events = append(b.events, Event{Kind: Added, Service: svc})
			continue
		}
		if s.nextAsk.IsZero() && s.asks == 0 {
			b.schedule(s, time.Now()) // ask at once for what is missing
		}
	}
	return done
}

// observeQuery (watch only) notes another host's multicast question for a reported instance's
// SRV that does not list it as a known answer: such a question should get a multicast answer.
// Two of them within poofWindow, with no SRV for the instance seen since the first, mean it is
// gone, before its TTL says so (RFC 6762 section 10.5; maintain reports it removed).
func (b *browser) observeQuery(p *packet) {
	if !b.watch || p.src.Port() != mdnsPort {
		return
	}
	known := map[string]bool{}
	for _, r := range p.records {
		if r.sec == secAnswer && r.rr.Header().Rrtype == dns.TypeSRV {
			known[strings.ToLower(r.rr.Header().Name)] = true
		}
	}
	for _, q := range p.question {
		if q.Qclass&qclassQU != 0 || (q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY) {
			continue
		}
		k := strings.ToLower(q.Name)
		s := b.insts[k]
		if s == nil || !s.reported || known[k] {
			continue
		}
		if s.poof == 0 {
			s.poofFrom = b.now
		}
		s.poof++
	}
}

// goodbye handles a TTL-0 PTR or SRV for s: an unreported instance is forgotten; a reported
// one is reported removed when watching (a snapshot reports each instance once).
func (b *browser) goodbye(s *instState) {
	switch {
	case s == nil:
	case !s.reported:
		b.forget(s)
	case b.watch:
		b.remove(s)
	}
}

// seen notes a PTR or SRV with the given TTL: the instance lives at least that long.
func (s *instState) seen(now time.Time, ttl uint32) {
	d := time.Duration(ttl) * time.Second
	if exp := now.Add(d); exp.After(s.expires) {
		s.expires, s.ttl, s.refresh = exp, d, 0
	}
}

// usableAddr reports whether an advertised address can be a server's: not unspecified,
// multicast or broadcast, not a network or broadcast address of the receiving interface's
// subnets, and loopback only from this host.
func usableAddr(a netip.Addr, fromLoopback bool, ifc netIface) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || (a.IsLoopback() && !fromLoopback) {
		return false
	}
	if a.Is4() {
		b := a.As4()
		if b[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || b[0] >= 240 {
			return false // "this network", limited broadcast, reserved
		}
		for _, p := range ifc.prefixes {
			if p.Addr().Is4() && p.Bits() < 31 && p.Contains(a) && (a == p.Masked().Addr() || a == lastAddr(p)) {
				return false
			}
		}
	}
	return true
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// capTXT keeps the TXT strings that fit in maxTXTBytes.
func capTXT(txt []string) []string {
	n := 0
	for i, t := range txt {
		n += 1 + len(t)
		if n > maxTXTBytes {
			return txt[:i]
		}
	}
	return txt
}

// rankAddrs orders a server's addresses for trying: IPv4 before IPv6, routable before
// link-local, and within each, addresses on a subnet of the receiving interface first.
func rankAddrs(addrs []netip.Addr, ifc netIface) []netip.Addr {
	addrs = sortAddrs(addrs)
	rank := func(a netip.Addr) int {
		r := 0
		if !a.Is4() {
			r += 4
		}
		if a.IsLinkLocalUnicast() {
			r += 2
		}
		onLink := false
		for _, p := range ifc.prefixes {
			onLink = onLink || p.Contains(a.WithZone(""))
		}
		if !onLink {
			r++
		}
		return r
	}
	slices.SortStableFunc(addrs, func(x, y netip.Addr) int { return rank(x) - rank(y) })
	return addrs
}

// recordInst is the instance an SRV or TXT record with header h is about,
// or nil: not one of ours, a goodbye, or past the caps.
func (b *browser) recordInst(h *dns.RR_Header, src netip.Addr) *instState {
	name, ok := parseInstanceFQDN(h.Name)
	if !ok || h.Ttl == 0 {
		return nil
	}
	return b.inst(strings.ToLower(h.Name), name, h.Name, src)
}

// inst returns the instance with the given key, creating it if need be. It returns nil when
// the source that would introduce it has maxPerSource instances, or maxInstances are tracked,
// and none can be evicted (only unreported instances that gave up asking can): a flood from
// one host cannot push other hosts' servers out.
func (b *browser) inst(key, name, fqdn string, src netip.Addr) *instState {
	if s := b.insts[key]; s != nil {
		return s
	}
	src = src.WithZone("")
	if (b.bySrc[src] >= maxPerSource && !b.evictStale(src, true)) ||
		(len(b.insts) >= maxInstances && !b.evictStale(src, false)) {
		if !b.full {
			b.full = true
			b.log.Debug().Int("max", maxPerSource).Str("from", src.String()).Str("ignored", fqdn).Msg("discovery: too many instances, ignoring new ones")
		}
		return nil
	}
	s := &instState{key: key, name: name, fqdn: fqdn, askEvery: firstFollowUp, src: src}
	b.insts[key] = s
	b.bySrc[src]++
	return s
}

// evictStale forgets one unreported instance that gave up asking, if there is one (introduced
// by src, if sameSrc).
func (b *browser) evictStale(src netip.Addr, sameSrc bool) bool {
	if b.stale == 0 {
		return false
	}
	for _, s := range b.insts {
		if s.gaveUp && !s.reported && (!sameSrc || s.src == src) {
			b.forget(s)
			return true
		}
	}
	return false
}

// forget removes an instance from every index.
func (b *browser) forget(s *instState) {
	delete(b.insts, s.key)
	if b.bySrc[s.src]--; b.bySrc[s.src] <= 0 {
		delete(b.bySrc, s.src)
	}
	b.unindexHost(s)
	delete(b.asking, s)
	if s.gaveUp && !s.reported {
		b.stale--
	}
	s.gone = true
}

func (b *browser) report(s *instState) {
	s.reported = true
	s.nextAsk = time.Time{}
	delete(b.asking, s)
	b.unindexHost(s)
	if s.gaveUp {
		b.stale--
	}
}

func (b *browser) schedule(s *instState, at time.Time) {
	s.nextAsk = at
	b.asking[s] = true
}

// indexHost files an unreported instance under its SRV target.
func (b *browser) indexHost(s *instState) {
	if s.reported || s.gone {
		return
	}
	k := strings.ToLower(s.host)
	if b.byHost[s.hostKey][s] && s.hostKey == k {
		return
	}
	b.unindexHost(s)
	set := b.byHost[k]
	if set == nil {
		set = map[*instState]bool{}
		b.byHost[k] = set
	}
	set[s] = true
	s.hostKey = k
}

func (b *browser) unindexHost(s *instState) {
	if set := b.byHost[s.hostKey]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.byHost, s.hostKey)
		}
	}
}

// nextFollowUp is when followUps next has something to send.
func (b *browser) nextFollowUp() (time.Time, bool) {
	var t time.Time
	for s := range b.asking {
		if t.IsZero() || s.nextAsk.Before(t) {
			t = s.nextAsk
		}
	}
	if t.IsZero() {
		return t, false
	}
	if t.Before(b.quiet) {
		t = b.quiet
	}
	return t, true
}

// followUps sends followUpQuery's query, if any.
func (b *browser) followUps(now time.Time) {
	pk := b.followUpQuery(now)
	if pk == nil {
		return
	}
	_ = b.send(pk) // logged; the instance is asked about again
}

// followUpQuery builds one query asking what the due incomplete instances still lack, longest
// due first, with at most maxQuestions questions in at most maxQueryLen bytes; instances left
// out stay due for the next query, at least followUpGap later. An instance is asked about at
// most maxFollowUps times (announcements may still complete it). It returns nil when there is
// nothing to ask yet.
func (b *browser) followUpQuery(now time.Time) []byte {
	b.init()
	if now.Before(b.quiet) {
		return nil
	}
	var due []*instState
	for s := range b.asking {
		if !now.Before(s.nextAsk) {
			due = append(due, s)
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(x, y *instState) int {
		if c := x.nextAsk.Compare(y.nextAsk); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	m := &dns.Msg{Compress: true}
	for _, s := range due {
		qs := s.questions()
		if len(m.Question)+len(qs) > maxQuestions {
			break
		}
		n := len(m.Question)
		m.Question = append(m.Question, qs...)
		if m.Len() > maxQueryLen {
			m.Question = m.Question[:n]
			if n > 0 {
				break
			}
			// Alone too big (cannot happen with names of at most 255 bytes): never ask.
			s.asks = maxFollowUps - 1
		}
		b.asked(s, now)
	}
	if len(m.Question) == 0 {
		return nil
	}
	b.quiet = now.Add(followUpGap)
	pk, err := m.Pack()
	if err != nil {
		b.log.Debug().Err(err).Msg("discovery: pack follow-up query")
		return nil
	}
	return pk
}

// asked records one round of follow-up questions about s and schedules the next, if any.
func (b *browser) asked(s *instState, now time.Time) {
	s.asks++
	if s.asks >= maxFollowUps {
		s.nextAsk = time.Time{} // give up asking; announcements may still complete it
		delete(b.asking, s)
		if !s.gaveUp {
			s.gaveUp = true
			b.stale++
		}
		return
	}
	s.nextAsk = now.Add(s.askEvery)
	s.askEvery = min(s.askEvery*2, maxFollowUp)
}
