package discovery

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

var (
	loMC  = ifaceInfo{Name: "lo", Flags: net.FlagUp | net.FlagLoopback | net.FlagMulticast, Addrs: ips("127.0.0.1", "::1")}
	loNo  = ifaceInfo{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Addrs: ips("127.0.0.1", "::1")}
	eth0  = ifaceInfo{Name: "eth0", Flags: net.FlagUp | net.FlagMulticast | net.FlagBroadcast, Addrs: ips("198.18.0.11", "fe80::1", "2001:db8::11")}
	wlan  = ifaceInfo{Name: "wlan0", Flags: net.FlagUp | net.FlagMulticast, Addrs: ips("192.168.1.5", "169.254.3.3")}
	down  = ifaceInfo{Name: "eth1", Flags: net.FlagMulticast, Addrs: ips("10.9.9.9")}
	tun   = ifaceInfo{Name: "tun0", Flags: net.FlagUp | net.FlagPointToPoint, Addrs: ips("10.8.0.2")}
	noErr error
)

func TestChooseAddrs(t *testing.T) {
	lanAll := ips("198.18.0.11", "192.168.1.5", "2001:db8::11")
	for _, tc := range []struct {
		name     string
		resolved []netip.Addr
		rerr     error
		ifaces   []ifaceInfo
		want     []netip.Addr
		reason   string
		wantErr  bool
	}{
		{"resolves to LAN address", ips("192.168.1.5"), noErr, []ifaceInfo{loNo, eth0, wlan}, ips("192.168.1.5"), `resolves to 192.168.1.5`, false},
		{"Debian 127.0.1.1", ips("127.0.1.1"), noErr, []ifaceInfo{loNo, eth0, wlan, down, tun}, lanAll, "loopback 127.0.1.1; using LAN addresses of eth0, wlan0", false},
		{"container 127.0.0.1", ips("127.0.0.1"), noErr, []ifaceInfo{loNo, eth0}, ips("198.18.0.11", "2001:db8::11"), "loopback", false},
		{"does not resolve", nil, errors.New("no such host"), []ifaceInfo{loNo, eth0}, ips("198.18.0.11", "2001:db8::11"), "does not resolve", false},
		{"resolves to foreign address", ips("172.17.0.5"), noErr, []ifaceInfo{loNo, eth0}, ips("198.18.0.11", "2001:db8::11"), "on no usable local interface", false},
		{"resolves to address of a down interface", ips("10.9.9.9"), noErr, []ifaceInfo{loNo, down, eth0}, ips("198.18.0.11", "2001:db8::11"), "on no usable local interface", false},
		{"solo namespace: loopback carries multicast", ips("127.0.1.1"), noErr, []ifaceInfo{loMC}, ips("127.0.0.1"), "loopback is the only multicast interface", false},
		{"loopback without multicast is never advertised", ips("127.0.1.1"), noErr, []ifaceInfo{loNo}, nil, "no usable", true},
		{"LAN wins over multicast loopback", ips("127.0.1.1"), noErr, []ifaceInfo{loMC, eth0}, ips("198.18.0.11", "2001:db8::11"), "eth0", false},
		{"restricted to one interface", ips("127.0.1.1"), noErr, []ifaceInfo{wlan}, ips("192.168.1.5"), "wlan0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := chooseAddrs("vm", tc.resolved, tc.rerr, tc.ifaces)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("addrs = %v, want %v", got, tc.want)
			}
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", reason, tc.reason)
			}
			for _, a := range got {
				if a.IsLoopback() && !slices.ContainsFunc(tc.ifaces, func(i ifaceInfo) bool { return i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagMulticast != 0 }) {
					t.Errorf("advertises loopback %v", a)
				}
			}
		})
	}
}
