package discovery

import (
	"context"
	"fmt"
	"net"
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
	maxFollowUps  = 3 // rounds of follow-up questions per instance (at 0, 250ms, 750ms), then it gives up

	// Bounds that keep a hostile or broken responder from making browse state, per-packet
	// work or our own queries grow without limit.
	maxInstances = 256                   // instances tracked at once, reported ones included
	maxQuestions = 16                    // questions in one follow-up query; the rest wait for later ones
	maxQueryLen  = 1400                  // bytes in one follow-up query: fits an Ethernet frame unfragmented
	followUpGap  = 25 * time.Millisecond // least time between two follow-up queries
)

// BrowseConfig configures Browse.
type BrowseConfig struct {
	Interface *net.Interface  // optional: restrict mDNS to this interface
	Log       *zerolog.Logger // library logs go here at debug level; nil: no logging
}

// Browse queries for _lanmsg._tcp.local. (the first query at once, then again at growing
// intervals), resolves each instance (SRV, TXT, A/AAAA, asking follow-up questions while an
// answer is incomplete) and calls found once per instance, as soon as it is complete, always
// from the goroutine that called Browse. It returns nil when ctx is done, or an error if it
// cannot set up (for example no multicast-capable interface) or cannot send its first query
// on any interface (for example a firewall blocks it).
func Browse(ctx context.Context, cfg BrowseConfig, found func(Service)) error {
	log := cfg.Log
	if log == nil {
		nop := zerolog.Nop()
		log = &nop
	}
	if err := ctx.Err(); err != nil {
		return nil
	}
	tr, err := openTransport(cfg.Interface, log)
	if err != nil {
		return fmt.Errorf("discovery: browse: %w", err)
	}
	defer tr.close()
	b := &browser{log: log, tr: tr, found: found}
	return b.run(ctx)
}

type instState struct {
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
	nextAsk  time.Time // zero: not scheduled
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
	tr     *transport
	insts  map[string]*instState          // key: lower-cased instance FQDN
	byHost map[string]map[*instState]bool // unreported instances with an SRV, by lower-cased target
	asking map[*instState]bool            // instances with a follow-up scheduled (nextAsk set)
	stale  int                            // unreported instances in insts that gave up asking
	full   bool                           // "too many instances" was logged
	quiet  time.Time                      // no follow-up query before this (followUpGap)
	found  func(Service)
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
}

func (b *browser) run(ctx context.Context) error {
	b.init()
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: serviceFQDN, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	ptrQuery, err := q.Pack()
	if err != nil {
		return fmt.Errorf("discovery: browse: pack query: %w", err)
	}
	nextPTR, every := time.Now(), firstRequery
	timer := time.NewTimer(0)
	defer timer.Stop()
	for first := true; ; first = false {
		now := time.Now()
		if !now.Before(nextPTR) {
			if err := b.tr.send(ptrQuery); err != nil {
				if first {
					// Not one copy of the first query went out (a firewall,
					// or macOS's Local Network permission): nothing can
					// answer, so say why rather than find nothing.
					return fmt.Errorf("discovery: browse: send query: %w", err)
				}
				b.log.Debug().Err(err).Msg("discovery: send query")
			}
			nextPTR = now.Add(every)
			every = min(every*2, maxRequery)
		}
		b.followUps(now)
		wake := nextPTR
		if t, ok := b.nextFollowUp(); ok && t.Before(wake) {
			wake = t
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
		case p := <-b.tr.pkts:
			for _, s := range b.handle(p) {
				if ctx.Err() != nil {
					return nil
				}
				b.found(s)
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// handle applies one packet and returns the instances it completed.
func (b *browser) handle(p *packet) []Service {
	if !p.response || p.opcode != 0 || p.rcode != 0 {
		return nil
	}
	b.init()
	fromLoopback := p.src.Addr().IsLoopback()
	hostAddrs := map[string][]netip.Addr{}
	touched := map[*instState]bool{}
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
			var a netip.Addr
			if x, ok := rr.(*dns.A); ok {
				a, _ = netip.AddrFromSlice(x.A)
			} else {
				a, _ = netip.AddrFromSlice(rr.(*dns.AAAA).AAAA)
			}
			a = a.Unmap()
			// A loopback address is only meaningful to a peer on the same host; an IPv6
			// link-local one would need the zone of the receiving interface.
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() ||
				(a.IsLoopback() && !fromLoopback) || (a.Is6() && a.IsLinkLocalUnicast()) {
				continue
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
				if s := b.insts[key]; s != nil && !s.reported {
					b.forget(s)
				}
				continue
			}
			if s := b.inst(key, name, rr.Ptr); s != nil {
				touched[s] = true
			}
		case *dns.SRV:
			s := b.recordInst(h)
			if s == nil {
				continue
			}
			if !s.haveSRV || !sameName(s.host, rr.Target) {
				s.addrs = nil // addresses belong to the host named by the latest SRV
			}
			s.haveSRV, s.host, s.port = true, rr.Target, int(rr.Port)
			b.indexHost(s)
			touched[s] = true
		case *dns.TXT:
			s := b.recordInst(h)
			if s == nil {
				continue
			}
			s.haveTXT, s.txt = true, parseTXT(rr.Txt)
			touched[s] = true
		}
	}
	// Addresses are taken from one packet only, preferably the one that carried the SRV:
	// never a union over packets, which could mix two machines that share a host name.
	for k, as := range hostAddrs {
		for s := range b.byHost[k] {
			if len(s.addrs) == 0 {
				s.addrs = sortAddrs(as)
				touched[s] = true
			}
		}
	}
	var done []Service
	for s := range touched {
		if s.reported || s.gone {
			continue
		}
		if s.complete() {
			b.report(s)
			done = append(done, Service{Instance: s.name, Host: s.host, Addrs: s.addrs, Port: s.port, TXT: s.txt})
			continue
		}
		if s.nextAsk.IsZero() && s.asks == 0 {
			b.schedule(s, time.Now()) // ask at once for what is missing
		}
	}
	return done
}

// inst returns the instance with the given key, creating it if need be. It returns nil when
// maxInstances are tracked and none of them can be evicted (only unreported instances that
// gave up asking can).
// recordInst is the instance an SRV or TXT record with header h is about,
// or nil: not one of ours, a goodbye, or past the cap.
func (b *browser) recordInst(h *dns.RR_Header) *instState {
	name, ok := parseInstanceFQDN(h.Name)
	if !ok || h.Ttl == 0 {
		return nil
	}
	return b.inst(strings.ToLower(h.Name), name, h.Name)
}

func (b *browser) inst(key, name, fqdn string) *instState {
	if s := b.insts[key]; s != nil {
		return s
	}
	if len(b.insts) >= maxInstances && !b.evictStale() {
		if !b.full {
			b.full = true
			b.log.Debug().Int("max", maxInstances).Str("ignored", fqdn).Msg("discovery: too many instances, ignoring new ones")
		}
		return nil
	}
	s := &instState{key: key, name: name, fqdn: fqdn, askEvery: firstFollowUp}
	b.insts[key] = s
	return s
}

// evictStale forgets one unreported instance that gave up asking, if there is one.
func (b *browser) evictStale() bool {
	if b.stale == 0 {
		return false
	}
	for _, s := range b.insts {
		if s.gaveUp && !s.reported {
			b.forget(s)
			return true
		}
	}
	return false
}

// forget removes an unreported instance from every index.
func (b *browser) forget(s *instState) {
	delete(b.insts, s.key)
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
	if err := b.tr.send(pk); err != nil {
		b.log.Debug().Err(err).Msg("discovery: send follow-up query")
	}
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
