//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Discovery on networks that are not one IPv4 LAN: a server on two LANs, IPv6-only LANs,
// an interface added to a running server, names that heal, and browse --watch.

// twoLANs is a lab of three hosts: h1 on LAN A (198.18.0.0/24, eth0) and LAN B
// (198.19.0.0/24, eth1), h2 on A only, h3 on B only.
func twoLANs(t *testing.T) *netlab.Lab {
	lab := netlab.Up(t, 3)
	lab.Connect(1, "eth1", "br1", "198.19.0.11/24")
	lab.Connect(3, "eth1", "br1", "198.19.0.13/24")
	lab.Unplug(3, "eth0")
	for i := 1; i <= 3; i++ {
		labHostname(lab, i, fmt.Sprintf("mh%d", i))
	}
	return lab
}

var lanB1 = netip.MustParseAddr("198.19.0.11")

// TestLabMultiHomed: a server on two LANs is listed on each with the address reachable from
// that LAN, and send --to reaches it from both; with --interface eth0, LAN B sees nothing.
func TestLabMultiHomed(t *testing.T) {
	bin := labLanmsg(t)
	lab := twoLANs(t)
	srv := labServe(t, lab, bin, 1, "mh1", "--name", "kitchen")
	for _, c := range []struct {
		host int
		addr netip.Addr
	}{{2, lab.Addr(1)}, {3, lanB1}} {
		found := labBrowse(t, lab, bin, c.host, 2*time.Second)
		if len(found) != 1 {
			t.Fatalf("browse on h%d listed %+v", c.host, found)
		}
		checkService(t, found[0], "kitchen", "mh1.local.", c.addr, srv.ad.Port)
		labRun(t, lab, bin, c.host, 15*time.Second, "send", "--to", "kitchen", fmt.Sprintf("from h%d", c.host)).wantCode(0)
	}
	got := messagesFrom(t, srv.stop())
	if want := []string{"198.18.0.12 from h2", "198.19.0.13 from h3"}; !slices.Equal(got, want) {
		t.Errorf("serve printed %q, want %q", got, want)
	}

	only := labServe(t, lab, bin, 1, "mh1", "--name", "pantry", "--interface", "eth0")
	if !slices.Equal(only.ad.Addrs, []string{lab.Addr(1).String()}) {
		t.Errorf("serve --interface eth0 advertises %v", only.ad.Addrs)
	}
	p := labRun(t, lab, bin, 3, 15*time.Second, "browse", "--timeout", "1500ms")
	p.wantCode(exitUnreachable)
	if out := p.output(procStdout); len(out) != 0 {
		t.Errorf("LAN B lists a server that uses eth0 only: %q", out)
	}
	if found := labBrowse(t, lab, bin, 2, 2*time.Second); len(found) != 1 || found[0].Name != "pantry" {
		t.Errorf("LAN A lists %+v", found)
	}
	only.stop()

	// The other way round: a client on both LANs, with --interface eth1, sees only LAN B.
	a := labServe(t, lab, bin, 2, "mh2", "--name", "on A")
	b := labServe(t, lab, bin, 3, "mh3", "--name", "on B")
	p = labRun(t, lab, bin, 1, 15*time.Second, "browse", "--json", "--timeout", "1500ms", "--interface", "eth1")
	p.wantCode(0)
	if out := strings.Join(p.output(procStdout), "\n"); strings.Contains(out, `"on A"`) || !strings.Contains(out, `"on B"`) {
		t.Errorf("browse --interface eth1 on h1 printed:\n%s", out)
	}
	a.stop()
	b.stop()
}

// TestLabInterfaceAdded: a server whose machine joins a second LAN while it runs becomes
// discoverable there within 5 s, without a restart; when its address there changes, the new
// one is announced.
func TestLabInterfaceAdded(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "grows")
	lab.Connect(2, "eth1", "br1", "198.19.0.12/24")
	lab.Unplug(2, "eth0")
	srv := labServe(t, lab, bin, 1, "grows", "--name", "late")
	added := time.Now()
	lab.Connect(1, "eth1", "br1", "198.19.0.11/24")
	watch := startLabProc(t, "browse --watch on h2", labCmd(lab, bin, 2, "", "browse", "--watch", "--json"))
	line := watch.waitLine(procStdout, 5*time.Second, "the server on the new LAN", func(l string) bool { return strings.Contains(l, `"late"`) })
	took := time.Since(added)
	var s struct {
		Event string   `json:"event"`
		Addrs []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Event != "add" || !slices.Equal(s.Addrs, []string{"198.19.0.11"}) {
		t.Errorf("browse --watch printed %s (%v)", line, err)
	}
	t.Logf("discoverable on the new interface %v after it was added", took)
	labRun(t, lab, bin, 2, 15*time.Second, "send", "--to", "late", "via eth1").wantCode(0)

	// Its address on the new LAN changes: the watcher sees the new one within seconds.
	// (promote_secondaries: deleting the old address must not take the new one with it.)
	if out, err := lab.Command(1, "sysctl", "-w", "net.ipv4.conf.eth1.promote_secondaries=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	for _, args := range [][]string{{"addr", "add", "198.19.0.21/24", "dev", "eth1"}, {"addr", "del", "198.19.0.11/24", "dev", "eth1"}} {
		if out, err := lab.Command(1, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	watch.waitLine(procStdout, 5*time.Second, "the new address", func(l string) bool {
		return strings.Contains(l, `"event":"change"`) && strings.Contains(l, `"addrs":["198.19.0.21"]`)
	})
	labRun(t, lab, bin, 2, 15*time.Second, "send", "--to", "late", "to the new address").wantCode(0)
	if got := messagesFrom(t, srv.stop()); !slices.Equal(got, []string{"198.19.0.12 via eth1", "198.19.0.12 to the new address"}) {
		t.Errorf("serve printed %q", got)
	}
}

// TestLabIPv6Only: on IPv6-only LANs, with a global (ULA) address and with link-local
// addresses only, serve, browse, send --to and chat work without flags.
func TestLabIPv6Only(t *testing.T) {
	bin := labLanmsg(t)
	for _, global := range []bool{true, false} {
		t.Run(map[bool]string{true: "global", false: "link-local"}[global], func(t *testing.T) {
			lab := netlab.Up(t, 3)
			for i := 1; i <= 3; i++ {
				lab.IPv6Only(i, global)
				lab.SetHosts(i, "127.0.0.1\tlocalhost\n::1\tlocalhost\n")
			}
			want := lab.Addr6(1)
			if !global {
				want = lab.LinkLocal(1)
			}
			srv := labServe(t, lab, bin, 1, "v6h1", "--name", "kitchen")
			if len(srv.ad.Addrs) != 1 || srv.ad.Addrs[0] != want.WithZone("").String() {
				t.Errorf("serve advertises %v, want [%s]", srv.ad.Addrs, want.WithZone(""))
			}
			found := labBrowse(t, lab, bin, 2, 2*time.Second)
			if len(found) != 1 || !slices.Equal(found[0].Addrs, []string{want.String()}) {
				t.Fatalf("browse listed %+v, want kitchen at %s", found, want)
			}
			labRun(t, lab, bin, 2, 15*time.Second, "send", "--to", "kitchen", "hello over IPv6").wantCode(0)

			cmd := labCmd(lab, bin, 3, "", "chat", "--as", "bob")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			chat := startLabProc(t, "chat on h3", cmd)
			chat.waitLine(procStdout, 10*time.Second, "the welcome", func(l string) bool { return strings.HasSuffix(l, "* here: bob") })
			if _, err := io.WriteString(in, "chatting over IPv6\n"); err != nil {
				t.Fatal(err)
			}
			in.Close()
			chat.wantExit(10*time.Second, 0)
			out := strings.Join(srv.stop(), "\n")
			for _, msg := range []string{"hello over IPv6", "chatting over IPv6"} {
				if !strings.Contains(out, msg) {
					t.Errorf("serve did not print %q:\n%s", msg, out)
				}
			}
		})
	}
}

// TestLabNameHealsAndWatch: browse --watch shows a server's start, a change of port and its
// goodbye; a server renamed "kitchen (2)" takes "kitchen" back within 5 s of the holder's
// goodbye, and logs it at warn.
func TestLabNameHealsAndWatch(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	for i := 1; i <= 3; i++ {
		labHostname(lab, i, fmt.Sprintf("hl%d", i))
	}
	watch := startLabProc(t, "browse --watch on h3", labCmd(lab, bin, 3, "", "browse", "--watch"))
	first := labServe(t, lab, bin, 1, "hl1", "--name", "kitchen", "--listen", ":7001")
	watch.waitLine(procStdout, 5*time.Second, "+ kitchen", func(l string) bool { return strings.HasPrefix(l, "+ kitchen ") && strings.Contains(l, "port 7001") })
	second := labServe(t, lab, bin, 2, "hl2", "--name", "kitchen", "--listen", ":7002")
	if second.ad.Name != "kitchen (2)" {
		t.Fatalf("second server advertises %q, want \"kitchen (2)\"", second.ad.Name)
	}
	watch.waitLine(procStdout, 5*time.Second, "+ kitchen (2)", func(l string) bool { return strings.HasPrefix(l, "+ kitchen (2) ") })
	// Logged before the advertising line: the rename at warn, saying who holds the name.
	if !slices.ContainsFunc(second.output(procStderr), func(l string) bool {
		// The holder's answer may come over IPv4 or IPv6 (link-local).
		return strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "renamed") && strings.Contains(l, "hl1.local. at ")
	}) {
		t.Errorf("no rename at warn naming the holder:\n%s", second.stderrText())
	}

	bye := time.Now()
	first.stop()
	watch.waitLine(procStdout, 5*time.Second, "- kitchen", func(l string) bool { return strings.HasPrefix(l, "- kitchen ") && strings.Contains(l, "port 7001") })
	watch.waitLine(procStdout, 5*time.Second, "+ kitchen on 7002", func(l string) bool { return strings.HasPrefix(l, "+ kitchen ") && strings.Contains(l, "port 7002") })
	took := time.Since(bye)
	second.waitLine(procStderr, time.Second, "the reclaim at warn", func(l string) bool {
		return strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "took our name back")
	})
	if took > 5*time.Second {
		t.Errorf("took the name back %v after the holder's goodbye, want within 5s", took)
	}
	t.Logf("name taken back %v after the goodbye", took)
	labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", "healed").wantCode(0)

	// A server killed without a goodbye and started again on another port: a change.
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	second.exit(5 * time.Second)
	if got := messagesFrom(t, second.output(procStdout)); !slices.Equal(got, []string{"198.18.0.13 healed"}) {
		t.Errorf("second server printed %q", got)
	}
	third := labServe(t, lab, bin, 2, "hl2", "--name", "kitchen", "--listen", ":7003")
	watch.waitLine(procStdout, 5*time.Second, "~ kitchen on 7003", func(l string) bool { return strings.HasPrefix(l, "~ kitchen ") && strings.Contains(l, "port 7003") })
	third.stop()
	watch.waitLine(procStdout, 5*time.Second, "- kitchen on 7003", func(l string) bool { return strings.HasPrefix(l, "- kitchen ") && strings.Contains(l, "port 7003") })
}
