//go:build linux

package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// TestLabWebPage: serve on h1 offers its chat page to h2: browse on h2
// shows its URL, the page loads from h2 at that URL, and avahi-browse on h2
// finds it as _http._tcp under the server's name with TXT path=/. With
// --no-web, none of this.
func TestLabWebPage(t *testing.T) {
	needAvahi(t)
	bin := labLanmsg(t)
	lab := netlab.Up(t, 2)
	labHostname(lab, 1, "labh1")
	env := append(labBaseEnv(), lab.StartAvahi(2, "avahih2")...)

	srv := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	want := fmt.Sprintf("http://%s:%d/", lab.Addr(1), srv.ad.Port)

	t.Run("browse shows the URL", func(t *testing.T) {
		found := labBrowse(t, lab, bin, 2, 2*time.Second)
		if len(found) != 1 || found[0].URL != want || found[0].TXT["web"] != "/" {
			t.Fatalf("browse --json on h2 listed %+v, want one server with url %s and TXT web=/", found, want)
		}
		p := labRun(t, lab, bin, 2, 15*time.Second, "browse", "--timeout", "2s")
		p.wantCode(0)
		if out := strings.Join(p.output(procStdout), "\n"); !strings.Contains(out, "kitchen") || !strings.Contains(out, "  "+want+"  ") {
			t.Errorf("browse on h2 printed %q, want the line for kitchen to show %s", out, want)
		}
	})

	t.Run("the page loads from another host", func(t *testing.T) {
		get := lab.Command(2, "/usr/bin/python3", "-c", "import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=10); print(r.headers['Content-Security-Policy']); print(r.read().decode())", want)
		get.Env = labBaseEnv()
		out, err := get.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `name="text"`) || !strings.Contains(string(out), "script-src 'self'") {
			t.Fatalf("GET %s from h2: %v\n%s", want, err, out)
		}
	})

	t.Run("avahi-browse finds _http._tcp", func(t *testing.T) {
		// avahi-browse gives no signal beyond its output: poll it with a
		// deadline.
		deadline := time.Now().Add(15 * time.Second)
		for {
			out := avahiBrowse(t, lab, 2, env, "-rptk", "_http._tcp")
			for line := range strings.SplitSeq(out, "\n") {
				// =;eth0;IPv4;kitchen;_http._tcp;local;labh1.local;198.18.0.11;5050;"path=/"
				f := strings.Split(line, ";")
				if len(f) < 10 || f[0] != "=" || f[3] != "kitchen" {
					continue
				}
				if f[4] != "_http._tcp" || f[6] != "labh1.local" || f[7] != lab.Addr(1).String() || f[8] != strconv.Itoa(srv.ad.Port) || f[9] != `"path=/"` {
					t.Errorf("avahi-browse resolved %q", line)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("avahi-browse did not resolve kitchen as _http._tcp; last output:\n%s", out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	srv.stop()

	t.Run("--no-web", func(t *testing.T) {
		srv := labServe(t, lab, bin, 1, "labh1", "--name", "pantry", "--no-web")
		found := labBrowse(t, lab, bin, 2, 2*time.Second)
		if len(found) != 1 || found[0].Name != "pantry" || found[0].URL != "" || found[0].TXT["web"] != "" {
			t.Errorf("browse --json on h2 listed %+v, want pantry without a page", found)
		}
		if out := avahiBrowse(t, lab, 2, env, "-rptk", "_http._tcp"); strings.Contains(out, "pantry") {
			t.Errorf("avahi-browse found pantry as _http._tcp:\n%s", out)
		}
		get := lab.Command(2, "/usr/bin/python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)", fmt.Sprintf("http://%s:%d/", lab.Addr(1), srv.ad.Port))
		get.Env = labBaseEnv()
		if out, err := get.CombinedOutput(); err == nil {
			t.Errorf("GET from h2 of serve --no-web succeeded:\n%s", out)
		}
		srv.stop()
	})
}
