//go:build linux

package netlab

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSolo(t *testing.T) {
	if !Solo(t) {
		return
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 || ifs[0].Flags&net.FlagUp == 0 || ifs[0].Flags&net.FlagMulticast == 0 {
		t.Fatalf("want only lo, up, with multicast; got %v", ifs)
	}
	out, err := exec.Command("ip", "route", "show", "table", "all", "224.0.0.0/4").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dev lo") {
		t.Fatalf("no multicast route via lo: %v %s", err, out)
	}
}

func TestUp(t *testing.T) {
	var lab *Lab
	t.Cleanup(func() { // runs after the lab's own cleanup
		if lab == nil {
			return
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), lab.prefix) {
			t.Errorf("namespaces left behind:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join("/etc/netns", lab.Host(1))); !os.IsNotExist(err) {
			t.Errorf("/etc/netns/%s left behind", lab.Host(1))
		}
	})
	lab = Up(t, 2)
	if len(lab.Host(2)) > 15+4 || lab.Addr(2).String() != "198.18.0.12" {
		t.Errorf("host %q addr %v", lab.Host(2), lab.Addr(2))
	}
	out, err := lab.Command(1, "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "198.18.0.11/24") {
		t.Errorf("h1 eth0: %v %s", err, out)
	}
	out, err = lab.Command(2, "ip", "route", "show", "table", "all", "224.0.0.0/4").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dev eth0") {
		t.Errorf("h2 multicast route: %v %s", err, out)
	}
	if _, err := exec.LookPath("ping"); err == nil {
		if out, err := lab.Command(2, "ping", "-c1", "-W2", lab.Addr(1).String()).CombinedOutput(); err != nil {
			t.Errorf("h2 cannot reach h1: %v %s", err, out)
		}
	}
	lab.SetHosts(1, "127.0.1.1\tsomebox\n")
	out, err = lab.CommandAs(1, "somebox", "sh", "-c", "hostname; cat /etc/hosts").CombinedOutput()
	if err != nil || string(out) != "somebox\n127.0.1.1\tsomebox\n" {
		t.Errorf("CommandAs/SetHosts: %v %q", err, out)
	}
	if me, _ := os.Hostname(); me == "somebox" {
		t.Errorf("CommandAs changed the machine's hostname")
	}
	// A process left running in a lab host is killed at cleanup.
	if err := lab.Command(2, "sleep", "300").Start(); err != nil {
		t.Fatal(err)
	}
}
