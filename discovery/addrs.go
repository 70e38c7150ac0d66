package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// resolveTimeout bounds the hostname lookup in DefaultAddrs: /etc/hosts answers at once, and a
// DNS server that does not know our own name must not delay startup.
const resolveTimeout = time.Second

// ifaceInfo is what the address policy needs to know about one interface.
type ifaceInfo struct {
	Name  string
	Flags net.Flags
	Addrs []netip.Addr
}

// DefaultAddrs picks the addresses to advertise for this machine, and says why.
//
// Like the Python tutorial's gethostbyname(gethostname()), it first uses the IPv4 address the
// hostname resolves to (/etc/hosts first, short timeout), provided that address is assigned
// to a local interface. When it resolves to loopback (Debian maps the hostname to 127.0.1.1,
// containers to 127.0.0.1), to nothing, or to an address this machine does not have, it uses
// the LAN addresses instead: global-unicast (including private) addresses of interfaces that
// are up, not loopback and multicast-capable, IPv4 first. Loopback is returned only when
// loopback is the only interface that carries multicast (see chooseAddrs).
func DefaultAddrs(ctx context.Context, hostname string, log *zerolog.Logger) ([]netip.Addr, string, error) {
	return defaultAddrs(ctx, hostname, nil, log)
}

func defaultAddrs(ctx context.Context, hostname string, only *net.Interface, log *zerolog.Logger) ([]netip.Addr, string, error) {
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, "", fmt.Errorf("discovery: hostname: %w", err)
		}
		hostname = h
	}
	ifaces, err := systemInterfaces(only)
	if err != nil {
		return nil, "", fmt.Errorf("discovery: list interfaces: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	resolved, rerr := net.DefaultResolver.LookupNetIP(lctx, "ip4", hostname)
	cancel()
	addrs, reason, err := chooseAddrs(hostname, resolved, rerr, ifaces)
	if log != nil {
		log.Debug().Str("hostname", hostname).Strs("addrs", addrStrings(addrs)).Str("reason", reason).Msg("discovery: address selection")
	}
	if err != nil {
		return nil, reason, fmt.Errorf("discovery: default addresses: %w", err)
	}
	return addrs, reason, nil
}

// chooseAddrs is the address policy of DefaultAddrs, free of system calls so it can be tested.
func chooseAddrs(hostname string, resolved []netip.Addr, resolveErr error, ifaces []ifaceInfo) ([]netip.Addr, string, error) {
	local := make(map[netip.Addr]bool)
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		for _, a := range ifc.Addrs {
			local[a.Unmap()] = true
		}
	}

	var why string
	var good []netip.Addr
	for _, a := range resolved {
		a = a.Unmap()
		switch {
		case a.IsLoopback():
			why = fmt.Sprintf("hostname %q resolves to loopback %s", hostname, a)
		case a.IsUnspecified() || a.IsMulticast():
			why = fmt.Sprintf("hostname %q resolves to unusable %s", hostname, a)
		case !local[a]:
			why = fmt.Sprintf("hostname %q resolves to %s, which is on no usable local interface", hostname, a)
		default:
			good = append(good, a)
		}
	}
	if len(good) > 0 {
		return sortAddrs(good), fmt.Sprintf("hostname %q resolves to %s", hostname, joinAddrs(good)), nil
	}
	if why == "" {
		if resolveErr != nil {
			why = fmt.Sprintf("hostname %q does not resolve (%v)", hostname, resolveErr)
		} else {
			why = fmt.Sprintf("hostname %q resolves to no IPv4 address", hostname)
		}
	}

	var lan []netip.Addr
	var names []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagMulticast == 0 {
			continue
		}
		n := len(lan)
		for _, a := range ifc.Addrs {
			a = a.Unmap()
			// IsGlobalUnicast includes private ranges and excludes loopback, link-local
			// (fe80::/10 and 169.254/16 -- they need a zone, or are not routable), multicast.
			if a.IsGlobalUnicast() {
				lan = append(lan, a)
			}
		}
		if len(lan) > n {
			names = append(names, ifc.Name)
		}
	}
	if len(lan) > 0 {
		return sortAddrs(lan), why + "; using LAN addresses of " + strings.Join(names, ", "), nil
	}

	// Deliberate exception: when loopback is the only interface that carries multicast (a
	// single-host network namespace such as `netlab solo`, whose lo has multicast on and a
	// 224.0.0.0/4 route), every peer is on this host and loopback is the only reachable address.
	// Anywhere else advertising loopback to the LAN would be a bug, which is why this is the last
	// resort and requires the multicast flag on lo.
	var lo []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback == 0 || ifc.Flags&net.FlagMulticast == 0 {
			continue
		}
		for _, a := range ifc.Addrs {
			if a = a.Unmap(); a.IsLoopback() && a.Is4() {
				lo = append(lo, a)
			}
		}
	}
	if len(lo) > 0 {
		return sortAddrs(lo), why + "; no LAN interface, loopback is the only multicast interface: advertising loopback", nil
	}
	return nil, why + "; no usable interface address", errors.New("no usable address: no interface is up, multicast-capable and has a global unicast address")
}

// systemInterfaces lists interfaces and their addresses (only the given one if only != nil).
func systemInterfaces(only *net.Interface) ([]ifaceInfo, error) {
	var list []net.Interface
	if only != nil {
		list = []net.Interface{*only}
	} else {
		var err error
		if list, err = net.Interfaces(); err != nil {
			return nil, err
		}
	}
	out := make([]ifaceInfo, 0, len(list))
	for _, ifc := range list {
		info := ifaceInfo{Name: ifc.Name, Flags: ifc.Flags}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				info.Addrs = append(info.Addrs, pfx.Addr().Unmap())
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// multicastInterfaces returns the interfaces to send and receive mDNS on: only, if given, else
// every interface that is up and multicast-capable.
func multicastInterfaces(only *net.Interface) []net.Interface {
	if only != nil {
		return []net.Interface{*only}
	}
	list, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifc := range list {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagMulticast != 0 {
			out = append(out, ifc)
		}
	}
	return out
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

func joinAddrs(addrs []netip.Addr) string { return strings.Join(addrStrings(addrs), ", ") }
