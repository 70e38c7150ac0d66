//go:build linux

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// TestLabDefaultPortTaken: without --listen, serve takes port 5050; when that
// is taken it takes a free port, says so, and advertises the port it got.
// (In a namespace: the tests never bind fixed ports on the machine itself.)
func TestLabDefaultPortTaken(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "porthost")

	first := labServe(t, lab, bin, 1, "porthost", "--name", "first")
	if first.ad.Port != defaultPort {
		t.Fatalf("the first server advertises port %d, want %d", first.ad.Port, defaultPort)
	}
	second := startServe(t, lab, bin, 1, "porthost", "--name", "second", "--data-dir", t.TempDir())
	warn := second.waitLine(procStderr, 10*time.Second, "a warning that port 5050 is in use", func(l string) bool {
		return strings.Contains(l, "port 5050 is in use")
	})
	var w struct {
		Level string `json:"level"`
		Port  int    `json:"port"`
	}
	if err := json.Unmarshal([]byte(warn), &w); err != nil || w.Level != "warn" || w.Port == 0 || w.Port == defaultPort {
		t.Fatalf("warning %q: want level warn and the free port taken", warn)
	}
	if ad := second.ready(); ad.Port != w.Port {
		t.Errorf("the second server took port %d but advertises %d", w.Port, ad.Port)
	}

	// Both are found, and reachable, on their own ports.
	labRun(t, lab, bin, 2, 15*time.Second, "send", "--to", "first", "to the first").wantCode(0)
	labRun(t, lab, bin, 2, 15*time.Second, "send", "--to", "second", "to the second").wantCode(0)
	if got := messagesFrom(t, second.stop()); len(got) != 1 || got[0] != "198.18.0.12 to the second" {
		t.Errorf("second server printed %q", got)
	}
	if got := messagesFrom(t, first.stop()); len(got) != 1 || got[0] != "198.18.0.12 to the first" {
		t.Errorf("first server printed %q", got)
	}
}

// TestLabInterface: --interface restricts mDNS to that interface, on both
// sides, and discovery still works over it.
func TestLabInterface(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "ifhost")
	srv := labServe(t, lab, bin, 1, "ifhost", "--name", "eth-only", "--interface", "eth0")
	if len(srv.ad.Addrs) != 1 || srv.ad.Addrs[0] != lab.Addr(1).String() {
		t.Errorf("serve --interface eth0 advertises %v, want [%s]", srv.ad.Addrs, lab.Addr(1))
	}
	p := labRun(t, lab, bin, 2, 15*time.Second, "browse", "--json", "--interface", "eth0", "--timeout", "2s")
	p.wantCode(0)
	if out := strings.Join(p.output(procStdout), "\n"); !strings.Contains(out, `"name":"eth-only"`) {
		t.Errorf("browse --interface eth0 printed:\n%s", out)
	}
	labRun(t, lab, bin, 2, 15*time.Second, "send", "--interface", "eth0", "--to", "eth-only", "via eth0").wantCode(0)
	if got := messagesFrom(t, srv.stop()); len(got) != 1 || got[0] != "198.18.0.12 via eth0" {
		t.Errorf("server printed %q", got)
	}
}
