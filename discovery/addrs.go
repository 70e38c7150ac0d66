package discovery

import (
	"net/netip"
	"strings"
)

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

func joinAddrs(addrs []netip.Addr) string { return strings.Join(addrStrings(addrs), ", ") }
