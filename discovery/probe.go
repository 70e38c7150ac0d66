package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// probeNames implements the probing of RFC 6762 section 8.1 for the instance name and the host
// name, renaming on conflict until both are free, and returns the final names (unescaped).
//
// A conflict on the instance name is any answer for <instance>._lanmsg._tcp.local. whose SRV
// differs from ours (port or target) or whose TXT carries a different id. A conflict on the
// host name is an answer for <host>.local. whose addresses (in one packet) share none with
// ours: another machine with the same hostname -- a cloned VM, a container, a Raspberry Pi --
// owns it, so we use <host>-2.local. and the two machines' addresses never mix under one
// name. An answer that shares an address is this machine (avahi-daemon or another lanmsg
// server on it) and is not a conflict.
//
// Not implemented: the simultaneous-probe tie-break (section 8.2) and conflict detection after
// announcing (section 9); two servers started within the same ~750 ms may keep the same name.
func probeNames(ctx context.Context, only *net.Interface, log *zerolog.Logger, z *zone, instance, host string) (string, string, error) {
	tr, err := openTransport(only, log)
	if err != nil {
		return "", "", err
	}
	defer tr.close()
	ourID := parseTXT(z.txt)["id"]
	for i := 0; ; i++ {
		if i > maxRenames {
			return "", "", fmt.Errorf("gave up after %d renames (last tried %q on %q)", maxRenames, instance, host)
		}
		ic, hc, err := probeOnce(ctx, tr, z, instance, host, ourID)
		if err != nil {
			return "", "", err
		}
		if !ic && !hc {
			return instance, host, nil
		}
		if hc {
			n := nextHost(host)
			log.Info().Str("old", host+".local.").Str("new", n+".local.").Msg("discovery: host name is used by another machine; renamed")
			host = n
		}
		if ic {
			n := nextName(instance)
			log.Info().Str("old", instance).Str("new", n).Msg("discovery: instance name is in use; renamed")
			instance = n
		}
	}
}

// probeOnce sends probeCount queries probeInterval apart and listens until probeInterval after
// the last one, returning early on a conflict.
func probeOnce(ctx context.Context, tr *transport, z *zone, instance, host, ourID string) (instConflict, hostConflict bool, err error) {
	inst, hst := instanceFQDN(instance), hostFQDN(host)
	q := new(dns.Msg)
	// No Authority section and no QU bit: the query comes from an ephemeral port, and avahi
	// rejects such "legacy unicast" queries that carry authority records.
	q.Question = []dns.Question{
		{Name: inst, Qtype: dns.TypeANY, Qclass: dns.ClassINET},
		{Name: hst, Qtype: dns.TypeANY, Qclass: dns.ClassINET},
	}
	b, err := q.Pack()
	if err != nil {
		return false, false, fmt.Errorf("pack probe for %q: %w", instance, err)
	}
	ours := make(map[netip.Addr]bool, len(z.addrs))
	for _, a := range z.addrs {
		ours[a] = true
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return false, false, ctx.Err()
		case <-timer.C:
			if sent == probeCount {
				return false, false, nil
			}
			if err := tr.send(b); err != nil {
				return false, false, fmt.Errorf("send probe: %w", err)
			}
			sent++
			timer.Reset(probeInterval)
		case p := <-tr.pkts:
			if !p.response {
				continue
			}
			var hostAddrs []netip.Addr
			for _, r := range p.records {
				h := r.rr.Header()
				if r.sec == secAuthority || h.Ttl == 0 {
					continue
				}
				switch rr := r.rr.(type) {
				case *dns.SRV:
					if sameName(h.Name, inst) && (int(rr.Port) != int(z.port) || !sameName(rr.Target, hst)) {
						instConflict = true
					}
				case *dns.TXT:
					if sameName(h.Name, inst) {
						if id := parseTXT(rr.Txt)["id"]; id != "" && id != ourID {
							instConflict = true
						}
					}
				case *dns.A:
					if sameName(h.Name, hst) {
						if a, ok := netip.AddrFromSlice(rr.A); ok {
							hostAddrs = append(hostAddrs, a.Unmap())
						}
					}
				case *dns.AAAA:
					if sameName(h.Name, hst) {
						if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
							hostAddrs = append(hostAddrs, a.Unmap())
						}
					}
				}
			}
			if len(hostAddrs) > 0 {
				shared := false
				for _, a := range hostAddrs {
					shared = shared || ours[a]
				}
				hostConflict = !shared
			}
			if instConflict || hostConflict {
				return instConflict, hostConflict, nil
			}
		}
	}
}
