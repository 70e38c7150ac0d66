//go:build linux

package discovery

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Interop with avahi (1: avahi-publish is found by Browse; 2: avahi-browse sees Advertise).
func TestInteropAvahi(t *testing.T) {
	for _, bin := range []string{"/usr/sbin/avahi-daemon", "/usr/bin/avahi-publish", "/usr/bin/avahi-browse"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("avahi interop: %s is not installed (apt-get install avahi-daemon avahi-utils)", bin)
		}
	}
	lab := netlab.Up(t, 2)
	env := lab.StartAvahi(2, "avahih2")

	t.Run("avahi-publish found by Browse", func(t *testing.T) {
		pub := lab.Command(2, "avahi-publish", "-s", "avahi svc", "_lanmsg._tcp", "7100", "v=1", "impl=avahi")
		pub.Env = append(os.Environ(), env...)
		startProc(t, pub, true).next(10*time.Second, "Established under name")
		got := browseLab(t, lab, 1, 2*time.Second)
		s, ok := got["avahi svc"]
		if !ok {
			t.Fatalf("Browse on h1 did not find avahi's service: %v", got)
		}
		checkAddrs(t, "found", s.Addrs, lab.Addr(2))
		if s.Port != 7100 || s.TXT["v"] != "1" || s.TXT["impl"] != "avahi" || s.Host != "avahih2.local." {
			t.Errorf("found %+v", s)
		}
	})

	t.Run("avahi-browse sees Advertise", func(t *testing.T) {
		adv := advertiseLab(t, lab, 1, "ourhost", "ours for avahi", "7101").ready()
		// avahi-browse gives no signal beyond its output: poll it with a deadline.
		deadline := time.Now().Add(15 * time.Second)
		for {
			cmd := lab.Command(2, "avahi-browse", "-rpt", "_lanmsg._tcp")
			cmd.Env = append(os.Environ(), env...)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A resolve that never completes keeps avahi-browse waiting:
			// end it (by PID) and look again.
			timer := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
			err := cmd.Wait()
			killed := !timer.Stop()
			out := stdout.Bytes()
			if err != nil && !killed {
				t.Fatalf("avahi-browse: %v: %s", err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				// =;eth0;IPv4;ours\032for\032avahi;_lanmsg._tcp;local;ourhost.local;198.18.0.11;7101;"id=..." "v=1" ...
				f := strings.Split(line, ";")
				if len(f) < 10 || f[0] != "=" || f[3] != `ours\032for\032avahi` {
					continue
				}
				if f[6] != "ourhost.local" || f[7] != lab.Addr(1).String() || f[8] != "7101" ||
					!strings.Contains(f[9], `"id=`+adv.TXT["id"]+`"`) || !strings.Contains(f[9], `"v=1"`) {
					t.Fatalf("avahi-browse resolved %q", line)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("avahi-browse did not resolve our service; last output:\n%s", out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}

func zeroconfPython(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import zeroconf").Run(); err != nil {
		t.Skipf("zeroconf interop: /usr/bin/python3 cannot import zeroconf (apt-get install python3-zeroconf): %v", err)
	}
}

// Interop with python-zeroconf (3: its registration is found by Browse; 4: its ServiceBrowser
// finds Advertise).
func TestInteropZeroconf(t *testing.T) {
	zeroconfPython(t)
	script, err := filepath.Abs("testdata/zc.py")
	if err != nil {
		t.Fatal(err)
	}
	lab := netlab.Up(t, 2)

	t.Run("zeroconf registration found by Browse", func(t *testing.T) {
		reg := startProc(t, lab.Command(2, "/usr/bin/python3", script, "register", lab.Addr(2).String(), "py svc", "7200"), true)
		reg.next(15*time.Second, "READY")
		got := browseLab(t, lab, 1, 2*time.Second)
		s, ok := got["py svc"]
		if !ok {
			t.Fatalf("Browse on h1 did not find zeroconf's service: %v", got)
		}
		checkAddrs(t, "found", s.Addrs, lab.Addr(2))
		if s.Port != 7200 || s.TXT["v"] != "1" || s.TXT["impl"] != "zeroconf" || s.Host != "pyhost.local." {
			t.Errorf("found %+v", s)
		}
	})

	t.Run("zeroconf ServiceBrowser finds Advertise", func(t *testing.T) {
		adv := advertiseLab(t, lab, 1, "ourhost", "ours for zeroconf", "7201").ready()
		br := startProc(t, lab.Command(2, "/usr/bin/python3", script, "browse", lab.Addr(2).String(), "4", adv.Instance), true)
		for {
			line := br.next(20*time.Second, "FOUND", "DONE")
			if line == "DONE" {
				t.Fatal("zeroconf did not find our service")
			}
			var f struct {
				Name       string
				Port       int
				Server     string
				Addresses  []string
				Properties map[string]string
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "FOUND ")), &f); err != nil {
				t.Fatal(err)
			}
			if f.Name != "ours for zeroconf._lanmsg._tcp.local." {
				continue
			}
			if f.Port != 7201 || f.Server != "ourhost.local." || strings.Join(f.Addresses, ",") != lab.Addr(1).String() ||
				f.Properties["id"] != adv.TXT["id"] || f.Properties["v"] != "1" {
				t.Errorf("zeroconf resolved %+v (advertised %+v)", f, adv)
			}
			return
		}
	})
}

// Interop with hashicorp/mdns's client: Go programs that use its Query find lanmsg servers.
func TestInteropHashicorpClient(t *testing.T) {
	lab := netlab.Up(t, 2)
	adv := advertiseLab(t, lab, 1, "ourhost", "ours for hashicorp", "7301").ready()
	h := startHelper(t, lab.Command(2, os.Args[0]), "hashicorp-lookup")
	for {
		line := h.next(20*time.Second, "ENTRY", "DONE")
		if line == "DONE" {
			t.Fatal("hashicorp/mdns's Query did not find our service")
		}
		if !strings.Contains(line, "ours") {
			continue
		}
		want := `ENTRY ours\ for\ hashicorp._lanmsg._tcp.local. ourhost.local. ` + lab.Addr(1).String() + ` 7301 `
		if !strings.HasPrefix(line, want) || !strings.Contains(line, `"id=`+adv.TXT["id"]+`"`) {
			t.Errorf("hashicorp/mdns found %q, want prefix %q and id=%s", line, want, adv.TXT["id"])
		}
		return
	}
}
