package discovery

import (
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

const (
	recordTTL  = 120     // seconds, RFC 6762 section 10 recommends 120 s for host-bound records
	cacheFlush = 1 << 15 // class top bit in responses: unique record, flush older copies
	qclassQU   = 1 << 15 // class top bit in questions: unicast response preferred
)

// zone implements hashicorp/mdns's Zone interface: the records of one advertised instance.
// Unlike mdns.MDNSService it compares names case-insensitively, answers the DNS-SD service
// type enumeration, puts no address records under the instance name, and can be switched off
// atomically (Close stops answering before it sends goodbyes). Immutable apart from closed.
type zone struct {
	closed   atomic.Bool
	instance string // presentation-format FQDN of the instance
	host     string // presentation-format FQDN of the host
	port     uint16
	addrs    []netip.Addr
	txt      []string
}

// Records answers one question (called by mdns.Server from its receive goroutines).
func (z *zone) Records(q dns.Question) []dns.RR {
	if z.closed.Load() {
		return nil
	}
	t := q.Qtype
	any := t == dns.TypeANY
	switch {
	case sameName(q.Name, metaFQDN):
		if any || t == dns.TypePTR {
			return []dns.RR{z.metaPTR(recordTTL)}
		}
	case sameName(q.Name, serviceFQDN):
		if any || t == dns.TypePTR {
			// The PTR plus everything needed to use it, so one round trip resolves the instance.
			rrs := []dns.RR{z.ptr(recordTTL), z.srv(recordTTL, 0), z.txtRR(recordTTL, 0)}
			return append(rrs, z.addrRRs(recordTTL, 0, true, true)...)
		}
	case sameName(q.Name, z.instance):
		switch {
		case any:
			rrs := []dns.RR{z.srv(recordTTL, 0), z.txtRR(recordTTL, 0)}
			return append(rrs, z.addrRRs(recordTTL, 0, true, true)...)
		case t == dns.TypeSRV:
			return append([]dns.RR{z.srv(recordTTL, 0)}, z.addrRRs(recordTTL, 0, true, true)...)
		case t == dns.TypeTXT:
			return []dns.RR{z.txtRR(recordTTL, 0)}
		}
	case sameName(q.Name, z.host):
		if any || t == dns.TypeA || t == dns.TypeAAAA {
			return z.addrRRs(recordTTL, 0, any || t == dns.TypeA, any || t == dns.TypeAAAA)
		}
	}
	return nil
}

func hdr(name string, t uint16, class uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET | class, Ttl: ttl}
}

func (z *zone) metaPTR(ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(metaFQDN, dns.TypePTR, 0, ttl), Ptr: serviceFQDN}
}

func (z *zone) ptr(ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, ttl), Ptr: z.instance}
}

func (z *zone) srv(ttl uint32, class uint16) dns.RR {
	return &dns.SRV{Hdr: hdr(z.instance, dns.TypeSRV, class, ttl), Port: z.port, Target: z.host}
}

func (z *zone) txtRR(ttl uint32, class uint16) dns.RR {
	return &dns.TXT{Hdr: hdr(z.instance, dns.TypeTXT, class, ttl), Txt: escapeTXT(z.txt)}
}

func (z *zone) addrRRs(ttl uint32, class uint16, v4, v6 bool) []dns.RR {
	var rrs []dns.RR
	for _, a := range z.addrs {
		switch {
		case a.Is4() && v4:
			rrs = append(rrs, &dns.A{Hdr: hdr(z.host, dns.TypeA, class, ttl), A: a.AsSlice()})
		case a.Is6() && v6:
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(z.host, dns.TypeAAAA, class, ttl), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

// announcement is the unsolicited response sent at start (RFC 6762 section 8.3), with the
// cache-flush bit on the unique records.
func (z *zone) announcement() *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Compress: true}
	m.Answer = []dns.RR{z.ptr(recordTTL), z.srv(recordTTL, cacheFlush), z.txtRR(recordTTL, cacheFlush)}
	m.Answer = append(m.Answer, z.addrRRs(recordTTL, cacheFlush, true, true)...)
	m.Answer = append(m.Answer, z.metaPTR(recordTTL))
	return m
}

// goodbye withdraws the instance (TTL 0, RFC 6762 section 10.1). The host's address records
// and the shared service-enumeration PTR are not withdrawn: other services (avahi, other lanmsg
// servers on a machine sharing the host name) may still be using them.
func (z *zone) goodbye() *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Compress: true}
	m.Answer = []dns.RR{z.ptr(0), z.srv(0, cacheFlush), z.txtRR(0, cacheFlush)}
	return m
}

// escapeTXT writes TXT strings in miekg/dns presentation form (it unescapes them when packing).
func escapeTXT(txt []string) []string {
	out := make([]string, len(txt))
	for i, s := range txt {
		s = strings.ReplaceAll(s, `\`, `\\`)
		out[i] = strings.ReplaceAll(s, `"`, `\"`)
	}
	return out
}
