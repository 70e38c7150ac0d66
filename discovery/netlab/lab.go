//go:build linux

package netlab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var labCounter atomic.Int32

// Lab is a LAN of network namespaces: hosts 1..N, each with lo and eth0 (198.18.0.(10+i)/24,
// multicast routed via eth0), their eth0s bridged in a switch namespace. Nothing routes out.
type Lab struct {
	t      testing.TB
	prefix string
	n      int
}

// Up creates a lab of n hosts, removed when the test ends: every process in its namespaces is
// killed, the namespaces and their /etc/netns/<ns> directories are deleted. It skips the test
// without root or when `ip netns add` fails.
func Up(t testing.TB, n int) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root to create network namespaces (ip netns add)")
	}
	if n < 1 || n > 200 {
		t.Fatalf("netlab: bad host count %d", n)
	}
	l := &Lab{t: t, prefix: fmt.Sprintf("lm%dx%d", os.Getpid(), labCounter.Add(1)), n: 0}
	sw := l.prefix + "-sw"
	if out, err := exec.Command("ip", "netns", "add", sw).CombinedOutput(); err != nil {
		t.Skipf("netlab: cannot create a network namespace (ip netns add): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(l.down)
	l.ip("-n", sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", sw, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		h := l.Host(i)
		l.ip("netns", "add", h)
		l.n = i
		p := "p" + strconv.Itoa(i)
		// Created inside the host namespace: nothing is added to the machine's own namespace.
		l.ip("-n", h, "link", "add", "eth0", "type", "veth", "peer", "name", p, "netns", sw)
		l.ip("-n", sw, "link", "set", p, "master", "br0", "up")
		l.ip("-n", h, "addr", "add", l.Addr(i).String()+"/24", "dev", "eth0")
		l.ip("-n", h, "link", "set", "lo", "up")
		l.ip("-n", h, "link", "set", "eth0", "up")
		l.ip("-n", h, "route", "add", "224.0.0.0/4", "dev", "eth0")
	}
	return l
}

func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// Host is the namespace name of host i (1-based).
func (l *Lab) Host(i int) string { return l.prefix + "-h" + strconv.Itoa(i) }

// Addr is host i's address on eth0: 198.18.0.(10+i).
func (l *Lab) Addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }

// Command runs name with args on host i (ip netns exec), with /etc/netns/<ns>/* (see
// SetHosts) mounted over /etc.
func (l *Lab) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Host(i), name}, args...)...)
}

// CommandAs is Command with the process in its own UTS namespace whose hostname is hostname.
func (l *Lab) CommandAs(i int, hostname, name string, args ...string) *exec.Cmd {
	return l.Command(i, "unshare", append([]string{"-u", "sh", "-c", `hostname "$0" && exec "$@"`, hostname, name}, args...)...)
}

// SetHosts gives host i its own /etc/hosts (for commands started afterwards).
func (l *Lab) SetHosts(i int, content string) {
	l.t.Helper()
	dir := filepath.Join("/etc/netns", l.Host(i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(content), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
}

func (l *Lab) namespaces() []string {
	ns := []string{l.prefix + "-sw"}
	for i := 1; i <= l.n; i++ {
		ns = append(ns, l.Host(i))
	}
	return ns
}

func nsPids(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

func (l *Lab) down() {
	for _, ns := range l.namespaces() {
		// Every process in these namespaces was started by this test (through Command).
		for _, p := range nsPids(ns) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		for deadline := time.Now().Add(3 * time.Second); len(nsPids(ns)) > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Logf("netlab: ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
		_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
	}
}

// Connect plugs host i into the LAN of bridge br (created in the switch namespace if need be)
// through a new interface ifname with address prefix (e.g. "198.19.0.11/24"; "" for none),
// and brings it up. It works on a host whose programs are already running: that is how a test
// adds an interface to a running server.
func (l *Lab) Connect(i int, ifname, br, prefix string) {
	l.t.Helper()
	sw := l.prefix + "-sw"
	if exec.Command("ip", "-n", sw, "link", "show", br).Run() != nil {
		l.ip("-n", sw, "link", "add", br, "type", "bridge")
		l.ip("-n", sw, "link", "set", br, "up")
	}
	peer := "p" + strconv.Itoa(i) + ifname
	l.ip("-n", l.Host(i), "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", sw)
	l.ip("-n", sw, "link", "set", peer, "master", br, "up")
	if prefix != "" {
		l.ip("-n", l.Host(i), "addr", "add", prefix, "dev", ifname)
	}
	l.ip("-n", l.Host(i), "link", "set", ifname, "up")
}

// Rebridge moves host i's eth0 to the LAN of bridge br (created in the switch namespace if
// need be): with it, one lab holds several LANs that see nothing of each other, such as two
// sites, each with its own server and users, whose servers are then linked over a third
// bridge (Connect).
func (l *Lab) Rebridge(i int, br string) {
	l.t.Helper()
	sw := l.prefix + "-sw"
	if exec.Command("ip", "-n", sw, "link", "show", br).Run() != nil {
		l.ip("-n", sw, "link", "add", br, "type", "bridge")
		l.ip("-n", sw, "link", "set", br, "up")
	}
	l.ip("-n", sw, "link", "set", "p"+strconv.Itoa(i), "master", br)
}

// SetLink takes host i's interface ifname down, or brings it back up: the cable pulled and
// plugged in again. Connections over it are not closed; they stall, as on a real outage.
func (l *Lab) SetLink(i int, ifname string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.ip("-n", l.Host(i), "link", "set", ifname, state)
}

// Unplug removes interface ifname from host i.
func (l *Lab) Unplug(i int, ifname string) {
	l.t.Helper()
	l.ip("-n", l.Host(i), "link", "del", ifname)
}

// IPv6Only makes host i's eth0 IPv6-only: its IPv4 address goes, it keeps its link-local
// address, and with global it gets fd06::(10+i)/64 as well (Addr6). It waits until duplicate
// address detection is over, so the addresses are usable.
func (l *Lab) IPv6Only(i int, global bool) {
	l.t.Helper()
	h := l.Host(i)
	l.ip("-n", h, "addr", "del", l.Addr(i).String()+"/24", "dev", "eth0")
	if global {
		l.ip("-n", h, "addr", "add", l.Addr6(i).String()+"/64", "dev", "eth0", "nodad")
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, _ := exec.Command("ip", "-n", h, "-6", "addr", "show", "dev", "eth0", "tentative").Output()
		if len(bytes.TrimSpace(out)) == 0 && l.LinkLocal(i).IsValid() {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("netlab: %s: IPv6 addresses still tentative: %s", h, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr6 is host i's global (ULA) IPv6 address after IPv6Only(i, true): fd06::(10+i).
func (l *Lab) Addr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x06, 15: byte(10 + i)})
}

// LinkLocal is host i's link-local address on eth0, with zone eth0 (invalid if it has none).
func (l *Lab) LinkLocal(i int) netip.Addr {
	out, _ := exec.Command("ip", "-n", l.Host(i), "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link").Output()
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
			return p.Addr().WithZone("eth0")
		}
	}
	return netip.Addr{}
}
