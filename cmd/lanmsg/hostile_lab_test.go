//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lanmsg/lanmsg/discovery/netlab"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// inNetns runs fn on an OS thread that has joined the network namespace ns:
// the sockets fn creates belong to ns, and keep working from any thread
// afterwards. The thread is never handed back to the scheduler: it ends with
// the goroutine, namespace and all.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		_ = f.Close()
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// labDebugState fetches /debug/state (after a GC) from a server listening
// for it on debugAddr inside namespace ns.
func labDebugState(t *testing.T, ns, debugAddr string) (st struct {
	Goroutines int            `json:"goroutines"`
	Sessions   int            `json:"sessions"`
	HeapBytes  int64          `json:"heap_bytes"`
	Budget     map[string]int `json:"budget"`
	Hosts      map[string]int `json:"hosts"`
}) {
	t.Helper()
	var body []byte
	var err error
	inNetns(t, ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", debugAddr, 5*time.Second); err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = io.WriteString(c, "GET /debug/state?gc=1 HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
			return
		}
		var resp *http.Response
		if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			return
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
	})
	if err != nil {
		t.Fatalf("debug state: %v", err)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("debug state %q: %v", body, err)
	}
	return st
}

// TestHostileLab replays the memory attack on a LAN of namespaces: the
// attacker host has 20 addresses, so the per-host cap is not what saves the
// server. A thousand chat members that never read, then a sender of 1 MiB
// messages of control bytes. Bound: peak RSS under 512 MiB; a valid send
// from a third host confirmed within 1 s during the attack and after it;
// sessions, goroutines, fds and heap back to their baseline.
func TestHostileLab(t *testing.T) {
	if raceEnabled {
		// The binary under attack is built without -race, as users run it;
		// under the race detector only the attacking harness is slowed, and
		// with it the timings this suite bounds. It runs in go test ./...
		t.Skip("the attack suite measures the real binary's timing and memory: run without -race")
	}
	if testing.Short() {
		t.Skip("attacks a server in a namespace lab: not in -short")
	}
	lab := netlab.Up(t, 3) // skips, saying why, without root
	advRaiseNofile(t, 8192)
	bin := advBuild(t, t.TempDir())
	const addrs, perAddr = 20, 50
	attackers := make([]string, addrs)
	for i := range addrs {
		attackers[i] = fmt.Sprintf("198.18.0.%d", 100+i)
		if out, err := exec.Command("ip", "-n", lab.Host(2), "addr", "add", attackers[i]+"/24", "dev", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("ip addr add: %v: %s", err, out)
		}
	}

	// The server on h1, default flags, its output in a file.
	outPath := t.TempDir() + "/serve.out"
	readyFile := t.TempDir() + "/serve.ready"
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := lab.Command(1, bin, "--log-format", "json", "serve", "--no-advertise", "--listen", lab.Addr(1).String()+":0", "--debug-listen", "127.0.0.1:0", "--ready-file", readyFile)
	cmd.Stdout = out
	logs := sessiontest.NewLog()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid // ip netns exec execs lanmsg in place
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logs.Add(sc.Text())
		}
		logs.Close()
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID
		<-exited
		if t.Failed() {
			t.Logf("server log tail:\n%s", logs.Tail(30))
		}
	})
	info, err := waitReady(readyFile, exited, 10*time.Second)
	if err != nil {
		t.Fatalf("%v; server log:\n%s", err, logs)
	}
	addr, debugAddr := info.Addr, info.DebugAddr
	h1 := lab.Host(1)
	base := labDebugState(t, h1, debugAddr)
	baseFDs := labFDs(t, pid)

	valid := func(tag string) time.Duration {
		t.Helper()
		msg := fmt.Sprintf("valid %s %d", tag, time.Now().UnixNano())
		start := time.Now()
		c := lab.Command(3, bin, "--log-format", "json", "send", "--server", addr, "--confirm-timeout", "5s", msg)
		c.WaitDelay = time.Second
		timer := time.AfterFunc(10*time.Second, func() { _ = c.Process.Kill() }) // by PID
		o, err := c.CombinedOutput()
		timer.Stop()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("a valid send %s from h3: %v\n%s", tag, err, o)
		}
		if d > time.Second {
			t.Errorf("a valid send %s from h3 took %v, want confirmed within 1s", tag, d)
		}
		return d
	}
	before := valid("before the attack")

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var sender net.Conn
	inNetns(t, lab.Host(2), func() {
		for a, from := range attackers {
			for i := range perAddr {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					t.Errorf("attacker %s: %v", from, err)
					return
				}
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
				_, _ = c.Write(advFrame(fmt.Sprintf(`!HELLO {"v":1,"name":"l%d-%d","chat":true}`, a, i)))
				conns = append(conns, c)
			}
		}
		var err error
		if sender, err = net.Dial("tcp", addr); err != nil {
			t.Errorf("flood sender: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	advPoll(t, 20*time.Second, func() bool { return labDebugState(t, h1, debugAddr).Sessions == addrs*perAddr+1 }, func() string {
		return fmt.Sprintf("%+v, want %d sessions (and the flood sender's)", labDebugState(t, h1, debugAddr), addrs*perAddr)
	})
	st := labDebugState(t, h1, debugAddr)
	for _, from := range attackers {
		if st.Hosts[from] != perAddr {
			t.Errorf("server counts %d sessions from %s, want %d", st.Hosts[from], from, perAddr)
		}
	}

	during := hostileFlood(t, sender, valid)
	peak := advProcStatus(t, pid, "VmHWM")
	st = labDebugState(t, h1, debugAddr)
	t.Logf("1000 silent chat members from %d addresses of one host, %d messages of 1 MiB of control bytes: peak RSS %s (bound 512 MiB), %d sessions left, budget %v; valid sends from h3 took %v before and at most %v during (%d sends)",
		addrs, hostileFloodMsgs, advMiB(peak), st.Sessions, st.Budget, before, slices.Max(during), len(during))
	if peak >= 512<<20 {
		t.Errorf("peak RSS %s, over the 512 MiB bound", advMiB(peak))
	}

	for _, c := range conns {
		_ = c.Close()
	}
	_ = sender.Close()
	after := valid("after the attack")
	advPoll(t, advStoreCacheWait, func() bool {
		st = labDebugState(t, h1, debugAddr)
		return st.Sessions == 0 && st.Goroutines <= base.Goroutines && st.HeapBytes <= base.HeapBytes+advHeapSlack
	}, func() string {
		return fmt.Sprintf("%d sessions, %d goroutines, heap %s; baseline %d goroutines, heap %s", st.Sessions, st.Goroutines, advMiB(st.HeapBytes), base.Goroutines, advMiB(base.HeapBytes))
	})
	advPoll(t, 10*time.Second, func() bool { return labFDs(t, pid) <= baseFDs }, func() string {
		return fmt.Sprintf("%d fds, baseline %d", labFDs(t, pid), baseFDs)
	})
	t.Logf("after the attack: a valid send took %v; %d goroutines, heap %s (baseline %d, %s)", after, st.Goroutines, advMiB(st.HeapBytes), base.Goroutines, advMiB(base.HeapBytes))
}

func labFDs(t *testing.T, pid int) int {
	t.Helper()
	n, err := advPeerFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
