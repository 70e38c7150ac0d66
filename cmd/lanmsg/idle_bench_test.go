//go:build linux

package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/trust"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// count reads a JSON number.
func count(v any) int { f, _ := v.(float64); return int(f) }

// vmRSS is a process's resident memory, in bytes.
func vmRSS(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkIdleTLSSessions opens 10,000 TLS sessions (client certificates
// included) to a 'lanmsg serve' process and leaves them idle, then reports
// the server's resident memory per session, with plain sessions measured the
// same way in the same run for reference. Target (issue 10): under 16 KiB
// per idle TLS session; it fails above.
func BenchmarkIdleTLSSessions(b *testing.B) {
	const sessions = 10000
	bin := benchBinary(b)
	me, err := trust.Load(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cert, err := me.Certificate()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		perPlain := idleRun(b, bin, sessions, nil)
		perTLS := idleRun(b, bin, sessions, func(addr string, srvKey trust.Fingerprint) (net.Conn, error) {
			d := &net.Dialer{Timeout: 10 * time.Second}
			return tls.DialWithDialer(d, "tcp", addr, trust.ClientConfig(&cert, trust.Expect(srvKey)))
		})
		b.ReportMetric(perPlain/1024, "plain-KiB/session")
		b.ReportMetric(perTLS/1024, "tls-KiB/session")
		if perTLS >= 16<<10 {
			b.Errorf("an idle TLS session takes %.1f KiB of the server's resident memory (plain: %.1f KiB), over 16 KiB", perTLS/1024, perPlain/1024)
		}
	}
}

// idleRun starts a server, opens n idle sessions with dial (plain TCP if
// nil) and returns the server's resident memory per session.
func idleRun(b *testing.B, bin string, n int, dial func(addr string, srvKey trust.Fingerprint) (net.Conn, error)) float64 {
	b.Helper()
	dir := b.TempDir()
	srvID, err := trust.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	addr, debug := freeAddr(b), freeAddr(b)
	cmd := exec.Command(bin, "--config-dir", dir, "--log-level", "error", "serve", "--no-advertise", "--listen", addr, "--debug-listen", debug,
		"--max-sessions", strconv.Itoa(2*n), "--max-sessions-per-host", strconv.Itoa(2*n))
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	state := func(gc bool) map[string]any {
		url := "http://" + debug + "/debug/state"
		if gc {
			url += "?gc=1"
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(url)
			if err == nil {
				var m map[string]any
				err = json.NewDecoder(resp.Body).Decode(&m)
				_ = resp.Body.Close()
				if err == nil {
					return m
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("server state: %v", err)
			}
		}
	}
	state(true)
	open := func() net.Conn {
		var c net.Conn
		var err error
		if dial == nil {
			c, err = net.DialTimeout("tcp", addr, 10*time.Second)
		} else {
			c, err = dial(addr, srvID.Fingerprint)
		}
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	first := open() // the per-server state a session creates
	defer first.Close()
	state(true)
	base := vmRSS(b, cmd.Process.Pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		conns = append(conns, open())
	}
	for deadline := time.Now().Add(60 * time.Second); count(state(false)["sessions"]) < n+1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the server holds %v sessions of %d", state(false)["sessions"], n+1)
		}
	}
	// Memory the handshakes used and freed goes back to the system as the
	// runtime's scavenger returns it: collect, then wait until the
	// resident size stops falling (at most 10 s).
	rss := vmRSS(b, cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		state(true)
		time.Sleep(500 * time.Millisecond)
		next := vmRSS(b, cmd.Process.Pid)
		if next >= rss-int64(n)*64 { // under 64 B a session: settled
			rss = min(rss, next)
			break
		}
		rss = next
	}
	st := state(true)
	b.Logf("%d sessions (tls %v): RSS %.1f -> %.1f MiB, Go heap %.1f KiB/session, goroutine stacks %.1f KiB/session", n, dial != nil,
		float64(base)/(1<<20), float64(rss)/(1<<20), float64(count(st["heap_bytes"]))/float64(n)/1024, float64(count(st["stack_bytes"]))/float64(n)/1024)
	if p := os.Getenv("LANMSG_IDLE_HEAPPROFILE"); p != "" {
		resp, err := http.Get("http://" + debug + "/debug/pprof/heap")
		if err == nil {
			f, _ := os.Create(fmt.Sprintf("%s.%v", p, dial != nil))
			_, _ = io.Copy(f, resp.Body)
			_ = f.Close()
			_ = resp.Body.Close()
		}
	}
	return float64(rss-base) / float64(n)
}
