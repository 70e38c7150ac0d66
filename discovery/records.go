package discovery

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

const (
	recordTTL  = 120     // seconds, RFC 6762 section 10 recommends 120 s for host-bound records
	legacyTTL  = 10      // seconds at most in answers to legacy unicast queries (section 6.7)
	cacheFlush = 1 << 15 // class top bit in responses: unique record, flush older copies
	qclassQU   = 1 << 15 // class top bit in questions: unicast response preferred
)

// names are the instance and host names being advertised or probed, in presentation format.
type names struct {
	instance string   // FQDN of the instance
	host     string   // FQDN of the host
	also     []string // FQDNs of the instance under the other service types (engineConfig.also)
}

// isAlso reports whether name is one of the instance's names under another service type.
func (ns names) isAlso(name string) bool {
	for _, n := range ns.also {
		if sameName(name, n) {
			return true
		}
	}
	return false
}

// alsoService is another service type advertised under the instance name.
type alsoService struct {
	fqdn string // "_http._tcp.local."
	txt  []string
}

// recordSet builds the records of one advertisement as answered on one interface.
type recordSet struct {
	names
	port  uint16
	txt   []string
	addrs []netip.Addr // the interface's advertised addresses
	also  []alsoService
}

func hdr(name string, t uint16, class uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET | class, Ttl: ttl}
}

func (z *recordSet) metaPTR(ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(metaFQDN, dns.TypePTR, 0, ttl), Ptr: serviceFQDN}
}

func (z *recordSet) ptr(ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, ttl), Ptr: z.instance}
}

func (z *recordSet) srv(ttl uint32, class uint16) dns.RR {
	return &dns.SRV{Hdr: hdr(z.instance, dns.TypeSRV, class, ttl), Port: z.port, Target: z.host}
}

func (z *recordSet) txtRR(ttl uint32, class uint16) dns.RR {
	return &dns.TXT{Hdr: hdr(z.instance, dns.TypeTXT, class, ttl), Txt: escapeTXT(z.txt)}
}

func (z *recordSet) addrRRs(ttl uint32, class uint16, v4, v6 bool) []dns.RR {
	var rrs []dns.RR
	for _, a := range z.addrs {
		switch {
		case a.Is4() && v4:
			rrs = append(rrs, &dns.A{Hdr: hdr(z.host, dns.TypeA, class, ttl), A: a.AsSlice()})
		case a.Is6() && v6:
			rrs = append(rrs, &dns.AAAA{Hdr: hdr(z.host, dns.TypeAAAA, class, ttl), AAAA: a.WithZone("").AsSlice()})
		}
	}
	return rrs
}

// The records of the other service types: PTR, SRV and TXT under the instance's name there,
// and the service type's enumeration PTR.
func (z *recordSet) alsoPTR(i int, ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(z.also[i].fqdn, dns.TypePTR, 0, ttl), Ptr: z.names.also[i]}
}

func (z *recordSet) alsoSRV(i int, ttl uint32, class uint16) dns.RR {
	return &dns.SRV{Hdr: hdr(z.names.also[i], dns.TypeSRV, class, ttl), Port: z.port, Target: z.host}
}

func (z *recordSet) alsoTXT(i int, ttl uint32, class uint16) dns.RR {
	return &dns.TXT{Hdr: hdr(z.names.also[i], dns.TypeTXT, class, ttl), Txt: escapeTXT(z.also[i].txt)}
}

func (z *recordSet) alsoMetaPTR(i int, ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(metaFQDN, dns.TypePTR, 0, ttl), Ptr: z.also[i].fqdn}
}

// unique are the records only this advertisement may hold (cache-flush bit set): SRV, TXT and
// the addresses, then the other service types' SRV and TXT. They are what probing claims and
// what a conflict is about. The first two are the instance's own SRV and TXT.
func (z *recordSet) unique(ttl uint32) []dns.RR {
	rrs := append([]dns.RR{z.srv(ttl, cacheFlush), z.txtRR(ttl, cacheFlush)}, z.addrRRs(ttl, cacheFlush, true, true)...)
	for i := range z.also {
		rrs = append(rrs, z.alsoSRV(i, ttl, cacheFlush), z.alsoTXT(i, ttl, cacheFlush))
	}
	return rrs
}

// all is every record, as announced (RFC 6762 section 8.3).
func (z *recordSet) all(ttl uint32) []dns.RR {
	rrs := []dns.RR{z.ptr(ttl)}
	rrs = append(rrs, z.unique(ttl)...)
	rrs = append(rrs, z.metaPTR(ttl))
	for i := range z.also {
		rrs = append(rrs, z.alsoPTR(i, ttl), z.alsoMetaPTR(i, ttl))
	}
	return rrs
}

// answer returns the records that answer q (answers) and those that help use them
// (additional), as avahi and Bonjour attach them, so that one round trip resolves an instance.
func (z *recordSet) answer(q dns.Question) (answers, additional []dns.RR) {
	t := q.Qtype
	anyType := t == dns.TypeANY
	switch {
	case sameName(q.Name, metaFQDN):
		if anyType || t == dns.TypePTR {
			rrs := []dns.RR{z.metaPTR(recordTTL)}
			for i := range z.also {
				rrs = append(rrs, z.alsoMetaPTR(i, recordTTL))
			}
			return rrs, nil
		}
	case sameName(q.Name, serviceFQDN):
		if anyType || t == dns.TypePTR {
			return []dns.RR{z.ptr(recordTTL)}, z.unique(recordTTL)
		}
	case sameName(q.Name, z.instance):
		switch {
		case anyType:
			return z.unique(recordTTL)[:2], z.addrRRs(recordTTL, cacheFlush, true, true)
		case t == dns.TypeSRV:
			return []dns.RR{z.srv(recordTTL, cacheFlush)}, append([]dns.RR{z.txtRR(recordTTL, cacheFlush)}, z.addrRRs(recordTTL, cacheFlush, true, true)...)
		case t == dns.TypeTXT:
			return []dns.RR{z.txtRR(recordTTL, cacheFlush)}, nil
		}
	case z.alsoIndex(q.Name, true) >= 0:
		i := z.alsoIndex(q.Name, true)
		if anyType || t == dns.TypePTR {
			return []dns.RR{z.alsoPTR(i, recordTTL)}, append([]dns.RR{z.alsoSRV(i, recordTTL, cacheFlush), z.alsoTXT(i, recordTTL, cacheFlush)},
				z.addrRRs(recordTTL, cacheFlush, true, true)...)
		}
	case z.alsoIndex(q.Name, false) >= 0:
		i := z.alsoIndex(q.Name, false)
		switch {
		case anyType:
			return []dns.RR{z.alsoSRV(i, recordTTL, cacheFlush), z.alsoTXT(i, recordTTL, cacheFlush)}, z.addrRRs(recordTTL, cacheFlush, true, true)
		case t == dns.TypeSRV:
			return []dns.RR{z.alsoSRV(i, recordTTL, cacheFlush)}, append([]dns.RR{z.alsoTXT(i, recordTTL, cacheFlush)}, z.addrRRs(recordTTL, cacheFlush, true, true)...)
		case t == dns.TypeTXT:
			return []dns.RR{z.alsoTXT(i, recordTTL, cacheFlush)}, nil
		}
	case sameName(q.Name, z.host):
		if anyType || t == dns.TypeA || t == dns.TypeAAAA {
			return z.addrRRs(recordTTL, cacheFlush, anyType || t == dns.TypeA, anyType || t == dns.TypeAAAA), nil
		}
	}
	return nil, nil
}

// goodbye withdraws the instance (TTL 0, RFC 6762 section 10.1). The host's address records
// and the shared service-enumeration PTR are not withdrawn: other services (avahi, other lanmsg
// servers on a machine sharing the host name) may still be using them.
func (z *recordSet) goodbye() []dns.RR {
	rrs := []dns.RR{z.ptr(0), z.srv(0, cacheFlush), z.txtRR(0, cacheFlush)}
	for i := range z.also {
		rrs = append(rrs, z.alsoPTR(i, 0), z.alsoSRV(i, 0, cacheFlush), z.alsoTXT(i, 0, cacheFlush))
	}
	return rrs
}

// alsoIndex finds name among the other service types (service: their type names, else the
// instance's names under them); -1 if it is none.
func (z *recordSet) alsoIndex(name string, service bool) int {
	for i := range z.also {
		n := z.names.also[i]
		if service {
			n = z.also[i].fqdn
		}
		if sameName(name, n) {
			return i
		}
	}
	return -1
}

// shared reports whether rr is a shared record (a PTR): several responders may answer it, so
// multicast answers to it are delayed (RFC 6762 section 6).
func shared(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypePTR }

// rrKey identifies a record by name, type and data, ignoring TTL and the cache-flush bit.
func rrKey(rr dns.RR) string {
	h := rr.Header()
	return strings.ToLower(h.Name) + "/" + dns.TypeToString[h.Rrtype] + "/" + string(rdata(rr))
}

// rdata is rr's data in canonical (uncompressed) wire form, for comparisons (section 8.2).
func rdata(rr dns.RR) []byte {
	buf := make([]byte, 1024)
	rr = dns.Copy(rr)
	h := rr.Header()
	h.Name = "."
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil || n < 11 {
		return nil
	}
	return buf[11:n] // after root name (1), type, class, TTL, rdlength (10)
}

// compareSets is the lexicographic comparison of RFC 6762 section 8.2: each set sorted by
// class, type and data, compared record by record, a longer set winning a tie. It returns
// -1 when ours is earlier (we lose), +1 when it is later (we win), 0 when they are equal.
func compareSets(ours, theirs []dns.RR) int {
	key := func(rr dns.RR) []byte {
		h := rr.Header()
		b := []byte{byte((h.Class &^ cacheFlush) >> 8), byte(h.Class &^ cacheFlush), byte(h.Rrtype >> 8), byte(h.Rrtype)}
		return append(b, rdata(rr)...)
	}
	sortKeys := func(rrs []dns.RR) [][]byte {
		ks := make([][]byte, len(rrs))
		for i, rr := range rrs {
			ks[i] = key(rr)
		}
		slices.SortFunc(ks, bytes.Compare)
		return ks
	}
	a, b := sortKeys(ours), sortKeys(theirs)
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := bytes.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
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

// linkAddrs are the addresses advertised on interface ifc: override if given (the same
// everywhere), else the interface's own routable addresses (IPv4 including private ranges,
// IPv6 global and ULA), or, when it has none, its link-local ones (an IPv6-only LAN without a
// router has only fe80::). On a loopback interface (a single-host namespace) only 127.0.0.1.
func linkAddrs(ifc netIface, override []netip.Addr) []netip.Addr {
	if len(override) > 0 {
		return override
	}
	var routable, linkLocal []netip.Addr
	for _, p := range ifc.prefixes {
		a := p.Addr().Unmap().WithZone("")
		switch {
		case ifc.loopback:
			if a.Is4() && a.IsLoopback() {
				routable = append(routable, a)
			}
		case a.IsGlobalUnicast():
			routable = append(routable, a)
		case a.IsLinkLocalUnicast():
			linkLocal = append(linkLocal, a)
		}
	}
	if len(routable) > 0 {
		return sortAddrs(routable)
	}
	return sortAddrs(linkLocal)
}
