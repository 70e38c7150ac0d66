package discovery

import (
	"net/netip"
	"slices"
	"testing"
)

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// Each interface advertises its own addresses: routable ones, or link-local ones when it has
// nothing else (an IPv6-only LAN without a router); loopback only on a loopback interface.
func TestLinkAddrs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ifc      netIface
		override []netip.Addr
		want     []netip.Addr
	}{
		{"IPv4 LAN with link-local IPv6", netIface{prefixes: pfx("198.18.0.11/24", "fe80::1/64")}, nil, ips("198.18.0.11")},
		{"dual stack", netIface{prefixes: pfx("fd06::11/64", "192.168.1.5/24", "fe80::1/64")}, nil, ips("192.168.1.5", "fd06::11")},
		{"IPv6 only, global", netIface{prefixes: pfx("fd06::11/64", "fe80::1/64")}, nil, ips("fd06::11")},
		{"IPv6 only, link-local", netIface{prefixes: pfx("fe80::1/64")}, nil, ips("fe80::1")},
		{"IPv4 link-local only", netIface{prefixes: pfx("169.254.3.3/16")}, nil, ips("169.254.3.3")},
		{"solo namespace loopback", netIface{loopback: true, prefixes: pfx("127.0.0.1/8", "::1/128")}, nil, ips("127.0.0.1")},
		{"loopback never on a LAN interface", netIface{prefixes: pfx("127.0.0.1/8")}, nil, nil},
		{"override", netIface{prefixes: pfx("198.18.0.11/24")}, ips("10.0.0.1"), ips("10.0.0.1")},
	} {
		if got := linkAddrs(tc.ifc, tc.override); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Browse results: IPv4 before IPv6, routable before link-local, the receiving interface's
// subnets first; broadcast, network, multicast and unspecified addresses are refused.
func TestRankAndFilterAddrs(t *testing.T) {
	ifc := netIface{name: "eth1", prefixes: pfx("10.1.0.5/24", "fd01::5/64")}
	got := rankAddrs(ips("fe80::9%eth1", "fd02::9", "192.168.7.9", "fd01::9", "10.1.0.9"), ifc)
	want := ips("10.1.0.9", "192.168.7.9", "fd01::9", "fd02::9", "fe80::9%eth1")
	if !slices.Equal(got, want) {
		t.Errorf("rankAddrs = %v, want %v", got, want)
	}
	for _, a := range ips("10.1.0.0", "10.1.0.255", "255.255.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.251", "ff02::fb", "::", "240.0.0.1", "127.0.0.1") {
		if usableAddr(a, false, ifc) {
			t.Errorf("%v accepted", a)
		}
	}
	for _, a := range ips("10.1.0.1", "10.2.0.0", "fd01::9", "fe80::1") {
		if !usableAddr(a, false, ifc) {
			t.Errorf("%v refused", a)
		}
	}
	if !usableAddr(netip.MustParseAddr("127.0.0.1"), true, ifc) {
		t.Error("loopback from this host refused")
	}
}

// Without IP_PKTINFO (Windows), a packet's interface is the one whose subnet holds its source,
// or the only one in use.
func TestIfaceFor(t *testing.T) {
	ifs := map[int]netIface{
		2: {index: 2, prefixes: pfx("198.18.0.11/24")},
		3: {index: 3, prefixes: pfx("198.19.0.11/24", "fd06::11/64")},
	}
	for src, want := range map[string]int{"198.18.0.12": 2, "198.19.0.13": 3, "fd06::12": 3, "10.0.0.1": 0} {
		if got := ifaceFor(netip.MustParseAddr(src), ifs); got != want {
			t.Errorf("ifaceFor(%s) = %d, want %d", src, got, want)
		}
	}
	if got := ifaceFor(netip.MustParseAddr("10.0.0.1"), map[int]netIface{7: {index: 7}}); got != 7 {
		t.Errorf("the only interface: %d", got)
	}
}
