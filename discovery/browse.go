package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	maxFollowUps  = 8
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
// cannot set up (for example no multicast-capable interface).
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
	b := &browser{log: log, tr: tr, insts: map[string]*instState{}, found: found}
	return b.run(ctx)
}

type instState struct {
	name     string // unescaped instance name
	fqdn     string
	haveSRV  bool
	host     string
	port     int
	haveTXT  bool
	txt      map[string]string
	addrs    []netip.Addr
	reported bool
	nextAsk  time.Time // zero: not scheduled
	askEvery time.Duration
	asks     int
}

func (s *instState) complete() bool { return s.haveSRV && s.haveTXT && len(s.addrs) > 0 }

type browser struct {
	log   *zerolog.Logger
	tr    *transport
	insts map[string]*instState // key: lower-cased instance FQDN
	found func(Service)
}

func (b *browser) run(ctx context.Context) error {
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: serviceFQDN, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	ptrQuery, err := q.Pack()
	if err != nil {
		return fmt.Errorf("discovery: browse: pack query: %w", err)
	}
	nextPTR, every := time.Now(), firstRequery
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if !now.Before(nextPTR) {
			if err := b.tr.send(ptrQuery); err != nil {
				b.log.Debug().Err(err).Msg("discovery: send query")
			}
			nextPTR = now.Add(every)
			every = min(every*2, maxRequery)
		}
		b.followUps(now)
		wake := nextPTR
		for _, s := range b.insts {
			if !s.nextAsk.IsZero() && s.nextAsk.Before(wake) {
				wake = s.nextAsk
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
					delete(b.insts, key)
				}
				continue
			}
			touched[b.inst(key, name, rr.Ptr)] = true
		case *dns.SRV:
			name, ok := parseInstanceFQDN(h.Name)
			if !ok || h.Ttl == 0 {
				continue
			}
			s := b.inst(strings.ToLower(h.Name), name, h.Name)
			if !s.haveSRV || !sameName(s.host, rr.Target) {
				s.addrs = nil // addresses belong to the host named by the latest SRV
			}
			s.haveSRV, s.host, s.port = true, rr.Target, int(rr.Port)
			touched[s] = true
		case *dns.TXT:
			name, ok := parseInstanceFQDN(h.Name)
			if !ok || h.Ttl == 0 {
				continue
			}
			s := b.inst(strings.ToLower(h.Name), name, h.Name)
			s.haveTXT, s.txt = true, parseTXT(rr.Txt)
			touched[s] = true
		}
	}
	// Addresses are taken from one packet only, preferably the one that carried the SRV:
	// never a union over packets, which could mix two machines that share a host name.
	for _, s := range b.insts {
		if s.reported || !s.haveSRV || len(s.addrs) > 0 {
			continue
		}
		if as := hostAddrs[strings.ToLower(s.host)]; len(as) > 0 {
			s.addrs = sortAddrs(as)
			touched[s] = true
		}
	}
	var done []Service
	for s := range touched {
		if s.reported {
			continue
		}
		if s.complete() {
			s.reported = true
			s.nextAsk = time.Time{}
			done = append(done, Service{Instance: s.name, Host: s.host, Addrs: s.addrs, Port: s.port, TXT: s.txt})
			continue
		}
		if s.nextAsk.IsZero() && s.asks == 0 {
			s.nextAsk = time.Now() // ask at once for what is missing
		}
	}
	return done
}

func (b *browser) inst(key, name, fqdn string) *instState {
	s := b.insts[key]
	if s == nil {
		s = &instState{name: name, fqdn: fqdn, askEvery: firstFollowUp}
		b.insts[key] = s
	}
	return s
}

// followUps asks, in one query, what the due incomplete instances still lack.
func (b *browser) followUps(now time.Time) {
	var qs []dns.Question
	for _, s := range b.insts {
		if s.reported || s.nextAsk.IsZero() || now.Before(s.nextAsk) {
			continue
		}
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
		s.asks++
		if s.asks >= maxFollowUps {
			s.nextAsk = time.Time{} // give up asking; announcements may still complete it
		} else {
			s.nextAsk = now.Add(s.askEvery)
			s.askEvery = min(s.askEvery*2, maxFollowUp)
		}
	}
	if len(qs) == 0 {
		return
	}
	m := &dns.Msg{Question: qs, Compress: true}
	pk, err := m.Pack()
	if err == nil {
		err = b.tr.send(pk)
	}
	if err != nil {
		b.log.Debug().Err(err).Msg("discovery: send follow-up query")
	}
}
