//go:build linux

package main

// The harness of the adversarial suite (adversarial_test.go): it builds the
// real lanmsg binary once per test run, starts `lanmsg serve` on loopback with
// its debug endpoint, follows its JSON log, and measures what an attack could
// leak: goroutines, sessions, file descriptors, heap, RSS and CPU time.
// Every identifier here starts with adv, to stay clear of the other tests of
// the package.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// advBin is the lanmsg binary TestAdversarial built for its subtests.
var advBin string

// advBuild builds ./cmd/lanmsg into dir with go build (without -race, even
// under go test -race: the memory bounds are for the binary users run).
func advBuild(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "lanmsg")
	out, err := advBuildCommand(".", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// advBuildCommand builds the package in dir into bin. Without VCS stamping:
// the binary under test needs no version, and git refuses to describe a
// clone that belongs to another user, which would fail the build.
func advBuildCommand(dir, bin string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".")
	cmd.Dir = dir
	return cmd
}

// advBinary returns the binary under test.
func advBinary(t *testing.T) string {
	t.Helper()
	if advBin == "" {
		t.Fatal("advBin not set: adversarial helpers run only inside TestAdversarial")
	}
	return advBin
}

// advServer is a running `lanmsg serve`.
type advServer struct {
	t         *testing.T
	bin       string
	cmd       *exec.Cmd
	pid       int
	addr      string
	debugAddr string
	outPath   string // stdout, when it goes to a file
	log       *sessiontest.Log
	exited    chan struct{}
	waitErr   error // valid after exited is closed
	exitedAt  time.Time

	base advBaseline
}

// advBaseline is what the server holds when no client is connected.
type advBaseline struct {
	goroutines int
	fds        int
	heap       int64
	rss        int64
}

var advHTTP = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true}, // no lingering server goroutines
}

// advStart starts `lanmsg serve` on 127.0.0.1:0 with its debug endpoint, JSON
// logs and the extra flags. Its stdout goes to stdout if given (a pipe the
// test holds), else to a file. It returns once the server's --ready-file
// says that it listens, with the baseline measured; the process is killed at
// the end of the test if it still runs.
func advStart(t *testing.T, stdout *os.File, flags ...string) *advServer {
	t.Helper()
	s := &advServer{t: t, bin: advBinary(t), log: sessiontest.NewLog(), exited: make(chan struct{})}
	readyFile := filepath.Join(t.TempDir(), "serve.ready")
	args := append([]string{"--log-format", "json", "serve", "--no-advertise",
		"--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0", "--ready-file", readyFile}, flags...)
	s.cmd = exec.Command(s.bin, args...)
	if stdout == nil {
		s.outPath = filepath.Join(t.TempDir(), "serve.stdout")
		f, err := os.Create(s.outPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the child has its own descriptor
		stdout = f
	}
	s.cmd.Stdout = stdout
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = s.cmd.Process.Pid
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill() // by PID: only the process this test started
			<-s.exited
		}
		if t.Failed() {
			t.Logf("server log tail:\n%s", s.log.Tail(40))
		}
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.log.Add(sc.Text())
		}
		s.log.Close()
		s.waitErr = s.cmd.Wait() // after the pipe is read to its end
		s.exitedAt = time.Now()
		close(s.exited)
	}()
	info, err := waitReady(readyFile, s.exited, 10*time.Second)
	if err != nil {
		t.Fatalf("%v; server log:\n%s", err, s.log)
	}
	s.addr, s.debugAddr = info.Addr, info.DebugAddr
	if s.addr == "" || s.debugAddr == "" {
		t.Fatalf("no addr (%q) or debug_addr (%q) in the ready file", s.addr, s.debugAddr)
	}
	s.base = s.measureBaseline()
	t.Logf("server pid %d on %s (debug %s); baseline: %d goroutines, %d fds, heap %s, RSS %s",
		s.pid, s.addr, s.debugAddr, s.base.goroutines, s.base.fds, advMiB(s.base.heap), advMiB(s.base.rss))
	return s
}

// advState is /debug/state.
type advState struct {
	Goroutines int   `json:"goroutines"`
	Sessions   int   `json:"sessions"`
	HeapBytes  int64 `json:"heap_bytes"`
}

// state reads /debug/state; gc runs a garbage collection first.
func (s *advServer) state(gc bool) advState {
	s.t.Helper()
	url := "http://" + s.debugAddr + "/debug/state"
	if gc {
		url += "?gc=1"
	}
	resp, err := advHTTP.Get(url)
	if err != nil {
		s.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var st advState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		s.t.Fatalf("decoding /debug/state: %v", err)
	}
	return st
}

func (s *advServer) measureBaseline() advBaseline {
	b := advBaseline{goroutines: 1 << 30, fds: 1 << 30, heap: 1 << 62}
	// The minimum of a few samples, so that a goroutine or connection of a
	// previous debug request that is still ending does not count.
	for range 3 {
		st := s.state(true)
		b.goroutines = min(b.goroutines, st.Goroutines)
		b.heap = min(b.heap, st.HeapBytes)
		b.fds = min(b.fds, s.fds())
		time.Sleep(5 * time.Millisecond)
	}
	b.rss = s.rss()
	return b
}

// fds counts the server's open file descriptors.
func (s *advServer) fds() int {
	s.t.Helper()
	n, err := advPeerFDs(s.pid)
	if err != nil {
		s.t.Fatalf("reading the server's fds: %v", err)
	}
	return n
}

// advPeerFDs counts the descriptors process pid holds, except the files of
// its message store: JetStream keeps the message block it writes to open,
// and opens the next one when a block fills, whoever filled it. Sockets,
// pipes and every other file count: what an attacker could leave behind.
func advPeerFDs(pid int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.Contains(target, "/jetstream/") {
			continue
		}
		n++
	}
	return n, nil
}

// advStoreCacheWait is how long memory may take to come back after an
// attack that wrote to a room: JetStream keeps the last message block it
// touched cached for 10 s of quiet (nats-server's
// defaultCacheBufferExpiration), then drops it; the rest is the poll's margin.
const advStoreCacheWait = 20 * time.Second

// rss is the server's resident set (VmRSS) in bytes.
func (s *advServer) rss() int64 { return advProcStatus(s.t, s.pid, "VmRSS") }

// cpu is the CPU time (user+system) the server has used.
func (s *advServer) cpu() time.Duration {
	s.t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/stat")
	if err != nil {
		s.t.Fatalf("reading /proc/%d/stat: %v", s.pid, err)
	}
	str := string(b)
	fields := strings.Fields(str[strings.LastIndexByte(str, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func advProcStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parsing %s %q: %v", field, v, err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func advMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// advPoll polls cond (every 10 ms) until it holds, failing after timeout with
// what describe says. For resource counts, which give no signal.
func advPoll(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// advHeapSlack is how far the heap may stay above its baseline once every
// session is gone (after GCs): map buckets and pools the runtime keeps.
const advHeapSlack = 4 << 20

// checkRecovered checks that the server is back where it started: (b) no
// sessions and no more goroutines than at startup, (c) no more file
// descriptors, (e) heap near its baseline, and (d) idle CPU: less than 50 ms
// over a quiet second.
func (s *advServer) checkRecovered() {
	t := s.t
	t.Helper()
	var st advState
	advPoll(t, 10*time.Second, func() bool {
		st = s.state(false)
		return st.Sessions == 0 && st.Goroutines <= s.base.goroutines
	}, func() string {
		return fmt.Sprintf("%d sessions and %d goroutines, want 0 and at most the baseline %d", st.Sessions, st.Goroutines, s.base.goroutines)
	})
	var fds int
	advPoll(t, 10*time.Second, func() bool { fds = s.fds(); return fds <= s.base.fds }, func() string {
		return fmt.Sprintf("%d open fds, baseline %d", fds, s.base.fds)
	})
	advPoll(t, advStoreCacheWait, func() bool {
		st = s.state(true)
		return st.HeapBytes <= s.base.heap+advHeapSlack
	}, func() string {
		return fmt.Sprintf("heap %s after GC, baseline %s (+%s allowed)", advMiB(st.HeapBytes), advMiB(s.base.heap), advMiB(advHeapSlack))
	})
	c0 := s.cpu()
	time.Sleep(time.Second) // the measurement window, not a synchronisation
	if used := s.cpu() - c0; used >= 50*time.Millisecond {
		t.Errorf("server used %v of CPU over 1 s with no clients: spinning", used)
	}
}

// output returns the server's stdout so far (file output only).
func (s *advServer) output() string {
	s.t.Helper()
	b, err := os.ReadFile(s.outPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// signal sends sig to the server.
func (s *advServer) signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process to exit and returns when it did and its error.
func (s *advServer) waitExit(timeout time.Duration) (time.Time, error) {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.exitedAt, s.waitErr
	case <-time.After(timeout):
		s.t.Fatalf("server still running %v later", timeout)
	}
	return time.Time{}, nil
}

// stop ends the server with SIGTERM and checks that it exits 0 within 2 s.
func (s *advServer) stop() {
	s.t.Helper()
	start := time.Now()
	s.signal(syscall.SIGTERM)
	at, err := s.waitExit(10 * time.Second)
	if err != nil || at.Sub(start) > 2*time.Second {
		s.t.Errorf("after SIGTERM: exit %v after %v, want 0 within 2s", err, at.Sub(start))
	}
}

// sendValid runs `lanmsg send` (the real client) with one unique message and
// checks (a): it exits 0, confirmed, and the message is in the output.
func (s *advServer) sendValid(tag string) (took time.Duration) {
	t := s.t
	t.Helper()
	msg := fmt.Sprintf("valid %s %d", tag, time.Now().UnixNano())
	start := time.Now()
	code, stderr := advRunSend(t, 10*time.Second, nil, "--server", s.addr, msg)
	took = time.Since(start) // exit 0 is the server's confirmation
	if code != 0 {
		t.Fatalf("lanmsg send after the attack exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(s.output(), "] : "+msg+"\n") {
		t.Fatalf("confirmed message %q not in the output", msg)
	}
	return took
}

// advRunSend runs `lanmsg send ARGS` with stdin from in (nil: empty) and a
// hard timeout, and returns its exit code and stderr.
func advRunSend(t *testing.T, timeout time.Duration, in io.Reader, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(advBinary(t), append([]string{"--log-format", "json", "send"}, args...)...)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("lanmsg send: %v", err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("lanmsg send %q hung: killed after %v; stderr:\n%s", args, timeout, stderr.String())
	}
	return 0, ""
}

// Raw clients.

func advFrame(msg string) []byte { return transport.AppendFrame(nil, []byte(msg)) }

func advHeader(n int) []byte { return transport.AppendHeader(nil, n) }

var advDisconnect = advFrame(transport.Disconnect)

func advDial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// advEnd is how the server ended a connection, as a client reads it.
type advEnd int

const (
	advEOF     advEnd = iota // orderly close: the confirmation
	advReset                 // ECONNRESET
	advTimeout               // nothing within the timeout
	advOther
)

func (e advEnd) String() string {
	return [...]string{"orderly close (EOF)", "reset (RST)", "timeout", "other error"}[e]
}

// advReadEnd reads until the server ends the connection, discarding what it
// sends, and reports how and after how long.
func advReadEnd(c net.Conn, timeout time.Duration) (advEnd, time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(timeout))
	var buf [4096]byte
	for {
		_, err := c.Read(buf[:])
		if err == nil {
			continue
		}
		d := time.Since(start)
		switch {
		case errors.Is(err, io.EOF):
			return advEOF, d, err
		case errors.Is(err, syscall.ECONNRESET):
			return advReset, d, err
		case errors.Is(err, os.ErrDeadlineExceeded):
			return advTimeout, d, err
		}
		return advOther, d, err
	}
}

// advSession runs one whole session on a new connection: the frames of
// msgs, !DISCONNECT, and the wait for the server's close. It returns nil
// only when the server confirmed (closed normally).
func advSession(addr string, msgs []string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	var b []byte
	for _, m := range msgs {
		b = transport.AppendFrame(b, []byte(m))
	}
	b = append(b, advDisconnect...)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(b); err != nil {
		return err
	}
	end, _, err := advReadEnd(c, timeout)
	if end != advEOF {
		return fmt.Errorf("not confirmed: %v (%v)", end, err)
	}
	return nil
}

// advLines splits output into lines without their newlines.
func advLines(out string) []string {
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// advPeerLines returns the output lines of the client at peer (text format),
// message text only.
func advPeerLines(out, peer string) []string {
	var got []string
	prefix := "[" + peer + "] : "
	for _, l := range advLines(out) {
		if m, ok := strings.CutPrefix(l, prefix); ok {
			got = append(got, m)
		}
	}
	return got
}
