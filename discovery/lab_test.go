//go:build linux

package discovery

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

func advertiseLab(t *testing.T, lab *netlab.Lab, i int, hostname, instance, port string) *helper {
	t.Helper()
	var h *helper
	if hostname != "" {
		h = startHelper(t, lab.CommandAs(i, hostname, os.Args[0]), "advertise", "LANMSG_HELPER_INSTANCE="+instance, "LANMSG_HELPER_PORT="+port)
	} else {
		h = startHelper(t, lab.Command(i, os.Args[0]), "advertise", "LANMSG_HELPER_INSTANCE="+instance, "LANMSG_HELPER_PORT="+port)
	}
	return h
}

func browseLab(t *testing.T, lab *netlab.Lab, i int, d time.Duration) map[string]Service {
	t.Helper()
	h := startHelper(t, lab.Command(i, os.Args[0]), "browse", "LANMSG_HELPER_TIMEOUT="+d.String())
	return h.collect(d)
}

// checkAddrs compares got with want, leaving out IPv6 link-local addresses (avahi publishes
// its link-local address beside a routable one), which must carry a zone.
func checkAddrs(t *testing.T, what string, got []netip.Addr, want ...netip.Addr) {
	t.Helper()
	var routable []netip.Addr
	for _, a := range got {
		if a.IsLoopback() {
			t.Errorf("%s: loopback address %v seen from another host", what, a)
		}
		if a.Is6() && a.IsLinkLocalUnicast() {
			if a.Zone() == "" {
				t.Errorf("%s: link-local address %v without a zone", what, a)
			}
			continue
		}
		routable = append(routable, a)
	}
	if !slices.Equal(routable, want) {
		t.Errorf("%s: addrs %v, want %v", what, got, want)
	}
}

func TestLabAdvertiseBrowse(t *testing.T) {
	lab := netlab.Up(t, 2)
	adv := advertiseLab(t, lab, 1, "labhost", "lab one", "7001").ready()
	checkAddrs(t, "advertised", adv.Addrs, lab.Addr(1))
	got := browseLab(t, lab, 2, 1500*time.Millisecond)
	s, ok := got["lab one"]
	if !ok {
		t.Fatalf("h2 did not find h1's service: %v", got)
	}
	checkAddrs(t, "found", s.Addrs, lab.Addr(1))
	if s.Port != 7001 || s.Host != "labhost.local." || s.TXT["id"] != adv.TXT["id"] || s.TXT["ver"] != "test" {
		t.Errorf("found %+v, advertised %+v", s, adv)
	}
}

// Debian maps the hostname to 127.0.1.1 in /etc/hosts: the LAN address must be advertised.
func TestLabHostnameResolvesToLoopback(t *testing.T) {
	lab := netlab.Up(t, 2)
	lab.SetHosts(1, "127.0.0.1\tlocalhost\n127.0.1.1\tdebvm\n")
	adv := advertiseLab(t, lab, 1, "debvm", "", "7002").ready()
	if adv.Instance != "debvm" || adv.Host != "debvm.local." {
		t.Errorf("advertised %q on %q, want the hostname", adv.Instance, adv.Host)
	}
	checkAddrs(t, "advertised", adv.Addrs, lab.Addr(1))
	got := browseLab(t, lab, 2, 1500*time.Millisecond)
	s, ok := got["debvm"]
	if !ok {
		t.Fatalf("not found: %v", got)
	}
	checkAddrs(t, "found", s.Addrs, lab.Addr(1))
}

// Cloned machines share a hostname: both must be listed, each with its own address.
func TestLabSharedHostname(t *testing.T) {
	lab := netlab.Up(t, 3)
	a1 := advertiseLab(t, lab, 1, "twin", "", "7003").ready()
	a2 := advertiseLab(t, lab, 2, "twin", "", "7003").ready()
	if a1.Instance != "twin" || a1.Host != "twin.local." {
		t.Errorf("first: %q on %q", a1.Instance, a1.Host)
	}
	if a2.Instance != "twin (2)" || a2.Host != "twin-2.local." {
		t.Errorf("second: %q on %q, want \"twin (2)\" on twin-2.local.", a2.Instance, a2.Host)
	}
	got := browseLab(t, lab, 3, 1500*time.Millisecond)
	for _, want := range []struct {
		adv  Service
		addr netip.Addr
	}{{a1, lab.Addr(1)}, {a2, lab.Addr(2)}} {
		s, ok := got[want.adv.Instance]
		if !ok {
			t.Errorf("%q not listed: %v", want.adv.Instance, got)
			continue
		}
		checkAddrs(t, want.adv.Instance, s.Addrs, want.addr)
		if s.TXT["id"] != want.adv.TXT["id"] {
			t.Errorf("%q: id %s, want %s", want.adv.Instance, s.TXT["id"], want.adv.TXT["id"])
		}
	}
}
