//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Discovery end to end: the real lanmsg command (serve, browse, send) on LANs
// of network namespaces made with netlab, so that no multicast leaves the
// machine. Every test here skips, saying why, without root.

// labHostname gives host i of a lab the hostname name in its /etc/hosts,
// mapped to its LAN address (as a machine with a fixed address has it).
func labHostname(lab *netlab.Lab, i int, name string) {
	lab.SetHosts(i, fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", lab.Addr(i), name))
}

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkService checks a server listed by 'lanmsg browse --json'.
func checkService(t *testing.T, s labService, name, host string, addr netip.Addr, port int) {
	t.Helper()
	if s.Name != name || s.Host != host || !slices.Equal(s.Addrs, []string{addr.String()}) || s.Port != port {
		t.Errorf("browse listed %+v, want name %q host %q addrs [%s] port %d", s, name, host, addr, port)
	}
	if s.TXT["v"] != "1" || !hex16.MatchString(s.TXT["id"]) || s.TXT["ver"] != versionString() {
		t.Errorf("browse listed TXT %v, want v=1, id=<16 hex digits>, ver=%s", s.TXT, versionString())
	}
}

// TestLabServeBrowseSend: serve on h1 is listed by browse on h2 and receives
// what send on h3 sends, by name and as the only server; once serve has
// stopped, browse finds nothing.
func TestLabServeBrowseSend(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	for i := 1; i <= 3; i++ {
		labHostname(lab, i, "labh"+strconv.Itoa(i))
	}
	srv := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	if srv.ad.Name != "kitchen" || srv.ad.Host != "labh1.local." || !slices.Equal(srv.ad.Addrs, []string{"198.18.0.11"}) || srv.ad.Port != defaultPort {
		t.Errorf("serve logged that it advertises %+v; want kitchen on labh1.local. at 198.18.0.11 port %d", srv.ad, defaultPort)
	}

	t.Run("browse lists it", func(t *testing.T) {
		found := labBrowse(t, lab, bin, 2, 2*time.Second)
		if len(found) != 1 {
			t.Fatalf("browse on h2 listed %d servers, want 1: %+v", len(found), found)
		}
		checkService(t, found[0], "kitchen", "labh1.local.", lab.Addr(1), srv.ad.Port)
	})

	t.Run("send --to kitchen", func(t *testing.T) {
		labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", "hello").wantCode(0)
	})

	t.Run("send --to an unknown name", func(t *testing.T) {
		p := labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "pantry", "--browse-timeout", "1s", "lost")
		p.wantCode(exitUnreachable)
		if log := p.stderrText(); !strings.Contains(log, `no lanmsg server named "pantry"`) || !strings.Contains(log, `"kitchen"`) {
			t.Errorf("send --to pantry should say that it found only \"kitchen\":\n%s", log)
		}
	})

	t.Run("send to the only server", func(t *testing.T) {
		labRun(t, lab, bin, 3, 15*time.Second, "send", "hi").wantCode(0)
	})

	got := messagesFrom(t, srv.stop())
	want := []string{"198.18.0.13 hello", "198.18.0.13 hi"}
	if !slices.Equal(got, want) {
		t.Errorf("serve printed messages %q, want %q", got, want)
	}

	t.Run("stopped server is not found", func(t *testing.T) {
		p := labRun(t, lab, bin, 2, 15*time.Second, "browse", "--timeout", "1s")
		p.wantCode(exitUnreachable)
		if out := p.output(procStdout); len(out) != 0 {
			t.Errorf("browse after serve stopped listed %q", out)
		}
		if !strings.Contains(p.stderrText(), "no lanmsg server found") {
			t.Errorf("browse stderr: %s", p.stderrText())
		}
	})
}

// TestLabSharedHostname: two machines with the same hostname (cloned VMs)
// each serve under the default name; both are listed, each with its own
// address, and --to reaches each one.
func TestLabSharedHostname(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	labHostname(lab, 1, "twin")
	labHostname(lab, 2, "twin")
	// The second starts once the first answers: simultaneous probes are
	// not tie-broken (discovery/doc.go, Limits).
	s1 := labServe(t, lab, bin, 1, "twin")
	s2 := labServe(t, lab, bin, 2, "twin")
	if s1.ad.Name != "twin" || s1.ad.Host != "twin.local." || !slices.Equal(s1.ad.Addrs, []string{"198.18.0.11"}) {
		t.Errorf("first twin advertises %+v", s1.ad)
	}
	if s2.ad.Name != "twin (2)" || s2.ad.Host != "twin-2.local." || !slices.Equal(s2.ad.Addrs, []string{"198.18.0.12"}) {
		t.Errorf("second twin advertises %+v, want \"twin (2)\" on twin-2.local. at 198.18.0.12", s2.ad)
	}

	t.Run("browse lists both", func(t *testing.T) {
		found := labBrowse(t, lab, bin, 3, 2*time.Second)
		if len(found) != 2 {
			t.Fatalf("browse on h3 listed %d servers, want 2: %+v", len(found), found)
		}
		slices.SortFunc(found, func(a, b labService) int { return strings.Compare(a.Name, b.Name) })
		checkService(t, found[0], "twin", "twin.local.", lab.Addr(1), s1.ad.Port)
		checkService(t, found[1], "twin (2)", "twin-2.local.", lab.Addr(2), s2.ad.Port)
		if found[0].TXT["id"] == found[1].TXT["id"] {
			t.Errorf("both twins have id %s", found[0].TXT["id"])
		}
	})

	t.Run("send --to each", func(t *testing.T) {
		labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "twin", "to the first twin").wantCode(0)
		labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "twin (2)", "to the second twin").wantCode(0)
	})

	if got, want := messagesFrom(t, s1.stop()), []string{"198.18.0.13 to the first twin"}; !slices.Equal(got, want) {
		t.Errorf("first twin (h1) printed %q, want %q", got, want)
	}
	if got, want := messagesFrom(t, s2.stop()), []string{"198.18.0.13 to the second twin"}; !slices.Equal(got, want) {
		t.Errorf("second twin (h2) printed %q, want %q", got, want)
	}
}

// TestLabHostnameResolvesToLoopback: Debian maps the hostname to 127.0.1.1;
// serve must advertise its LAN address instead, and say why.
func TestLabHostnameResolvesToLoopback(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	lab.SetHosts(1, "127.0.1.1\tdebvm\n127.0.0.1\tlocalhost\n")
	srv := labServe(t, lab, bin, 1, "debvm")
	if srv.ad.Name != "debvm" || !slices.Equal(srv.ad.Addrs, []string{"198.18.0.11"}) {
		t.Errorf("serve advertises %+v, want debvm at 198.18.0.11", srv.ad)
	}

	t.Run("browse sees the LAN address", func(t *testing.T) {
		found := labBrowse(t, lab, bin, 2, 2*time.Second)
		if len(found) != 1 {
			t.Fatalf("browse on h2 listed %d servers, want 1: %+v", len(found), found)
		}
		checkService(t, found[0], "debvm", "debvm.local.", lab.Addr(1), srv.ad.Port)
	})

	t.Run("log says why", func(t *testing.T) {
		// The person reading serve's log, at the default level, learns why
		// the address the hostname resolves to is not the one advertised.
		if log := srv.stderrText(); !strings.Contains(log, "127.0.1.1") || !strings.Contains(log, "loopback") {
			t.Errorf("serve's log (default level) does not say that hostname debvm resolves to loopback 127.0.1.1, "+
				"so 198.18.0.11 is advertised instead:\n%s", log)
		}
	})
	srv.stop()
}

// Interop: servers published by avahi and by python-zeroconf (the tutorial's
// Python server behind them) are found and reached by lanmsg send; lanmsg
// serve is seen by avahi-browse and by python-zeroconf's browser.

func needAvahi(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"/usr/sbin/avahi-daemon", "/usr/bin/avahi-publish", "/usr/bin/avahi-browse"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("avahi interop: %s is not installed (.ci/run installs avahi-daemon and avahi-utils)", bin)
		}
	}
}

func needZeroconf(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import zeroconf").Run(); err != nil {
		t.Skipf("zeroconf interop: /usr/bin/python3 cannot import zeroconf (.ci/run installs python3-zeroconf): %v", err)
	}
}

// startPyServer starts the tutorial's Python server on all addresses of host
// i, on a free port, and returns it and the port.
func startPyServer(t *testing.T, lab *netlab.Lab, i int) (*labProc, int) {
	t.Helper()
	script, err := filepath.Abs("testdata/tutorial_server.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := lab.Command(i, "/usr/bin/python3", "-u", script, "0.0.0.0", "0")
	cmd.Env = labBaseEnv()
	p := startLabProc(t, fmt.Sprintf("tutorial server on h%d", i), cmd)
	l := p.waitLine(procStdout, 10*time.Second, "its listening line", func(l string) bool {
		return strings.HasPrefix(l, "[Starting] Server listening on ")
	})
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(l, "[Starting] Server listening on "))
	if err != nil {
		t.Fatalf("tutorial server: %q: %v", l, err)
	}
	return p, int(ap.Port())
}

// waitPyMessage waits for the tutorial server to print msg from peer.
func waitPyMessage(t *testing.T, py *labProc, peer netip.Addr, msg string) {
	t.Helper()
	// It prints "[('198.18.0.11', 41234)] : MSG" once it has read it.
	prefix := "[('" + peer.String() + "', "
	py.waitLine(procStdout, 5*time.Second, fmt.Sprintf("%q from %s", msg, peer), func(l string) bool {
		return strings.HasPrefix(l, prefix) && strings.HasSuffix(l, ")] : "+msg)
	})
}

// avahiBrowse runs avahi-browse ARGS on lab host i with env, bounded to 5 s:
// -t ends it once avahi's cache is listed, but a resolve that never
// completes can hold it open (one did for 8 minutes under load), and a run
// cut short gives what it printed so far, for the caller's next poll.
func avahiBrowse(t *testing.T, lab *netlab.Lab, i int, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := lab.Command(i, "avahi-browse", args...)
	cmd := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil && ctx.Err() == nil {
		t.Fatalf("avahi-browse: %v: %s", err, out)
	}
	return string(out)
}

func TestInteropAvahi(t *testing.T) {
	needAvahi(t)
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "labh1")
	// One avahi-daemon, on h2, serves both directions: netlab runs one at a
	// time on the machine.
	env := append(labBaseEnv(), lab.StartAvahi(2, "avahih2")...)

	t.Run("lanmsg send reaches a server avahi publishes", func(t *testing.T) {
		py, port := startPyServer(t, lab, 2)
		pub := lab.Command(2, "avahi-publish", "-s", "pyserver", "_lanmsg._tcp", strconv.Itoa(port), "v=1")
		pub.Env = env
		startLabProc(t, "avahi-publish", pub).waitLine(procStderr, 15*time.Second, "Established", func(l string) bool {
			return strings.HasPrefix(l, "Established under name 'pyserver'")
		})
		labRun(t, lab, bin, 1, 15*time.Second, "send", "--to", "pyserver", "hi from lanmsg").wantCode(0)
		waitPyMessage(t, py, lab.Addr(1), "hi from lanmsg")
	})

	t.Run("avahi-browse sees lanmsg serve", func(t *testing.T) {
		srv := labServe(t, lab, bin, 1, "labh1", "--name", "lanmsg h1")
		// avahi-browse gives no signal beyond its output: poll it with a
		// deadline.
		deadline := time.Now().Add(15 * time.Second)
		for {
			out := avahiBrowse(t, lab, 2, env, "-rpt", "_lanmsg._tcp")
			for line := range strings.SplitSeq(out, "\n") {
				// =;eth0;IPv4;lanmsg\032h1;_lanmsg._tcp;local;labh1.local;198.18.0.11;5050;"ver=..." "id=..." "v=1"
				f := strings.Split(line, ";")
				if len(f) < 10 || f[0] != "=" || f[3] != `lanmsg\032h1` {
					continue
				}
				if f[6] != "labh1.local" || f[7] != lab.Addr(1).String() || f[8] != strconv.Itoa(srv.ad.Port) ||
					!strings.Contains(f[9], `"v=1"`) || !regexp.MustCompile(`"id=[0-9a-f]{16}"`).MatchString(f[9]) ||
					!strings.Contains(f[9], `"ver=`+versionString()+`"`) {
					t.Errorf("avahi-browse resolved %q", line)
				}
				srv.stop()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("avahi-browse did not resolve lanmsg serve; last output:\n%s", out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}

func TestInteropZeroconf(t *testing.T) {
	needZeroconf(t)
	zc, err := filepath.Abs("../../discovery/testdata/zc.py")
	if err != nil {
		t.Fatal(err)
	}
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "labh1")

	t.Run("lanmsg send reaches a server zeroconf publishes", func(t *testing.T) {
		py, port := startPyServer(t, lab, 2)
		// zc.py registers until its stdin closes; StdinPipe keeps it open
		// until the process is killed at the end of the test.
		reg := lab.Command(2, "/usr/bin/python3", zc, "register", lab.Addr(2).String(), "zcserver", strconv.Itoa(port))
		reg.Env = labBaseEnv()
		if _, err := reg.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		startLabProc(t, "zc.py register", reg).waitLine(procStdout, 15*time.Second, "READY", func(l string) bool { return l == "READY" })
		labRun(t, lab, bin, 1, 15*time.Second, "send", "--to", "zcserver", "hi from lanmsg").wantCode(0)
		waitPyMessage(t, py, lab.Addr(1), "hi from lanmsg")
	})

	t.Run("zeroconf browser sees lanmsg serve", func(t *testing.T) {
		srv := labServe(t, lab, bin, 1, "labh1", "--name", "lanmsg h1")
		br := lab.Command(2, "/usr/bin/python3", zc, "browse", lab.Addr(2).String(), "5", "lanmsg h1")
		br.Env = labBaseEnv()
		p := startLabProc(t, "zc.py browse", br)
		for {
			l := p.waitLine(procStdout, 20*time.Second, "FOUND or DONE", func(l string) bool {
				return strings.HasPrefix(l, "FOUND ") || l == "DONE"
			})
			if l == "DONE" {
				t.Fatal("zeroconf's browser did not find lanmsg serve")
			}
			var f struct {
				Name       string
				Port       int
				Server     string
				Addresses  []string
				Properties map[string]string
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "FOUND ")), &f); err != nil {
				t.Fatal(err)
			}
			if f.Name != "lanmsg h1._lanmsg._tcp.local." {
				continue
			}
			if f.Port != srv.ad.Port || f.Server != "labh1.local." || !slices.Equal(f.Addresses, []string{lab.Addr(1).String()}) ||
				f.Properties["v"] != "1" || !hex16.MatchString(f.Properties["id"]) || f.Properties["ver"] != versionString() {
				t.Errorf("zeroconf resolved %+v", f)
			}
			break
		}
		srv.stop()
	})
}

// TestInteropAvahiAndZeroconfOneHost: avahi-daemon and python-zeroconf share port 5353 on one
// host, and both see lanmsg serve: its answers to their multicast questions are multicast,
// which every socket on the port receives (a unicast answer would reach only one of them).
func TestInteropAvahiAndZeroconfOneHost(t *testing.T) {
	needAvahi(t)
	needZeroconf(t)
	zc, err := filepath.Abs("../../discovery/testdata/zc.py")
	if err != nil {
		t.Fatal(err)
	}
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "labh1")
	env := append(labBaseEnv(), lab.StartAvahi(2, "avahih2")...)
	srv := labServe(t, lab, bin, 1, "labh1", "--name", "shared port")

	br := lab.Command(2, "/usr/bin/python3", zc, "browse", lab.Addr(2).String(), "8", "shared port")
	br.Env = labBaseEnv()
	zcProc := startLabProc(t, "zc.py browse", br)

	deadline := time.Now().Add(15 * time.Second)
	for avahiSaw := false; !avahiSaw; {
		out := avahiBrowse(t, lab, 2, env, "-rpt", "_lanmsg._tcp")
		for line := range strings.SplitSeq(out, "\n") {
			f := strings.Split(line, ";")
			if len(f) >= 10 && f[0] == "=" && f[3] == `shared\032port` && f[7] == lab.Addr(1).String() && f[8] == strconv.Itoa(srv.ad.Port) {
				avahiSaw = true
			}
		}
		if !avahiSaw && time.Now().After(deadline) {
			t.Fatalf("avahi-browse did not resolve lanmsg serve; last output:\n%s", out)
		}
		if !avahiSaw {
			time.Sleep(300 * time.Millisecond)
		}
	}
	for {
		l := zcProc.waitLine(procStdout, 20*time.Second, "FOUND or DONE", func(l string) bool {
			return strings.HasPrefix(l, "FOUND ") || l == "DONE"
		})
		if l == "DONE" {
			t.Fatal("zeroconf's browser, beside avahi-daemon, did not find lanmsg serve")
		}
		if strings.Contains(l, `"shared port._lanmsg._tcp.local."`) {
			if !strings.Contains(l, lab.Addr(1).String()) {
				t.Errorf("zeroconf resolved %s", l)
			}
			break
		}
	}
	srv.stop()
}
