//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Helpers for the discovery end-to-end tests (lab_test.go, pty_test.go): they
// run the real lanmsg command (this test binary, copied under the name
// lanmsg) inside private network namespaces made with netlab, and read its
// output through pipes.

// labLanmsg returns the path of a copy of this test binary named lanmsg, which
// testscript.Main (see TestMain) runs as the lanmsg command. Call it before
// netlab.Up, so that its directory outlives the lab's processes.
func labLanmsg(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "lanmsg")
	if os.Link(exe, dst) == nil { // a hard link is a copy as far as argv[0] goes
		return dst
	}
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// labBaseEnv is this process's environment without the namespace marker: for
// programs that are not lanmsg.
func labBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, insideNetnsEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// labEnv is the environment of a lanmsg that runs inside a lab namespace: only
// there may it use mDNS (see guard_test.go).
func labEnv() []string { return append(labBaseEnv(), insideNetnsEnv+"=1") }

// labCmd is lanmsg with args on host i of lab; with a hostname, in a UTS
// namespace of its own with that hostname. It runs in a session of its own,
// without a controlling terminal, so that it can never ask the person running
// the tests anything.
func labCmd(lab *netlab.Lab, bin string, i int, hostname string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if hostname != "" {
		cmd = lab.CommandAs(i, hostname, bin, args...)
	} else {
		cmd = lab.Command(i, bin, args...)
	}
	// Each lab host is a machine of its own, with its own key and pins.
	cmd.Env = append(labEnv(), "XDG_CONFIG_HOME="+filepath.Join(os.Getenv("XDG_CONFIG_HOME"), lab.Host(i)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// Streams of a labProc.
const (
	procStdout = 0
	procStderr = 1
)

// labProc is a started process whose stdout and stderr are read line by line
// as they come.
type labProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   [2][]string
	cursor  [2]int // where waitLine looks next
	eof     [2]bool
	changed chan struct{} // closed and replaced on each new line and at EOF
	done    chan struct{} // closed when the process has exited and its output is read
	started time.Time
}

// startLabProc starts cmd (whose Stdout and Stderr it sets to pipes). The process
// is killed, by PID, when the test ends if it is still running; if the test
// failed, its output is logged.
func startLabProc(t *testing.T, name string, cmd *exec.Cmd) *labProc {
	t.Helper()
	p := &labProc{t: t, name: name, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	var ws [2]*os.File
	var rs [2]*os.File
	for i := range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		rs[i], ws[i] = r, w
	}
	cmd.Stdout, cmd.Stderr = ws[0], ws[1]
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		for i := range 2 {
			rs[i].Close()
			ws[i].Close()
		}
		t.Fatalf("start %s (%v): %v", name, cmd.Args, err)
	}
	ws[0].Close()
	ws[1].Close()
	var readers sync.WaitGroup
	for i := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer rs[i].Close()
			sc := bufio.NewScanner(rs[i])
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				p.mu.Lock()
				p.lines[i] = append(p.lines[i], sc.Text())
				close(p.changed)
				p.changed = make(chan struct{})
				p.mu.Unlock()
			}
			p.mu.Lock()
			p.eof[i] = true
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}()
	}
	go func() {
		_ = cmd.Wait()
		readers.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
		}
		if t.Failed() {
			p.dump()
		}
	})
	return p
}

// dump logs everything the process printed.
func (p *labProc) dump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.Logf("%s (%s) stdout:\n%s", p.name, strings.Join(p.cmd.Args, " "), strings.Join(p.lines[procStdout], "\n"))
	p.t.Logf("%s stderr:\n%s", p.name, strings.Join(p.lines[procStderr], "\n"))
}

// output returns the lines printed so far on a stream.
func (p *labProc) output(stream int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines[stream]...)
}

// waitLine waits up to d for a line on stream that match accepts, after the
// one it last returned, and returns it. It fails the test if the stream ends,
// or d passes, first.
func (p *labProc) waitLine(stream int, d time.Duration, what string, match func(string) bool) string {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for i := p.cursor[stream]; i < len(p.lines[stream]); i++ {
			if match(p.lines[stream][i]) {
				p.cursor[stream] = i + 1
				l := p.lines[stream][i]
				p.mu.Unlock()
				return l
			}
		}
		ch, eof := p.changed, p.eof[stream]
		p.mu.Unlock()
		if eof {
			p.dump()
			p.t.Fatalf("%s ended without printing %s", p.name, what)
		}
		select {
		case <-ch:
		case <-timer.C:
			p.dump()
			p.t.Fatalf("%s printed no %s within %v", p.name, what, d)
		}
	}
}

// exit waits up to d for the process to end and returns its exit code (-1 if
// a signal ended it). If d passes first, the process is killed and the test
// fails.
func (p *labProc) exit(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.dump()
		p.t.Fatalf("%s did not exit within %v", p.name, d)
	}
	return p.cmd.ProcessState.ExitCode()
}

// wantExit waits for the process to exit with code want.
func (p *labProc) wantExit(d time.Duration, want int) {
	p.t.Helper()
	if got := p.exit(d); got != want {
		p.dump()
		p.t.Fatalf("%s exited with %d, want %d", p.name, got, want)
	}
}

// wantCode checks the exit code of a process that has exited (see labRun).
func (p *labProc) wantCode(want int) {
	p.t.Helper()
	if got := p.cmd.ProcessState.ExitCode(); got != want {
		p.dump()
		p.t.Fatalf("%s exited with %d, want %d", p.name, got, want)
	}
}

// stderrText is everything on stderr so far.
func (p *labProc) stderrText() string { return strings.Join(p.output(procStderr), "\n") }

// labLogLine is a lanmsg JSON log line (--log-format json), with the fields of
// the "advertising on the LAN" line.
type labLogLine struct {
	Level   string   `json:"level"`
	Message string   `json:"message"`
	Error   string   `json:"error"`
	Name    string   `json:"name"`
	Host    string   `json:"host"`
	Addrs   []string `json:"addrs"`
	Port    int      `json:"port"`
}

// labServer is a 'lanmsg serve' running on a lab host, and what it advertises.
type labServer struct {
	*labProc
	ad labLogLine
}

// labServe starts 'lanmsg serve --log-format json ARGS' on host i of lab and
// waits for its "advertising on the LAN" log line (the signal that it answers
// on the LAN). With a hostname, it runs with that hostname.
func labServe(t *testing.T, lab *netlab.Lab, bin string, i int, hostname string, args ...string) *labServer {
	t.Helper()
	s := startServe(t, lab, bin, i, hostname, args...)
	s.ready()
	return s
}

// startServe starts 'lanmsg serve' without waiting; ready waits.
func startServe(t *testing.T, lab *netlab.Lab, bin string, i int, hostname string, args ...string) *labServer {
	t.Helper()
	argv := append([]string{"serve", "--log-format", "json"}, args...)
	name := fmt.Sprintf("serve on h%d", i)
	return &labServer{labProc: startLabProc(t, name, labCmd(lab, bin, i, hostname, argv...))}
}

// ready waits for the advertising line; a logged error fails the test at once.
func (s *labServer) ready() labLogLine {
	s.t.Helper()
	l := s.waitLine(procStderr, 15*time.Second, `"advertising on the LAN" log line`, func(line string) bool {
		var ll labLogLine
		if json.Unmarshal([]byte(line), &ll) != nil {
			return false
		}
		return strings.HasPrefix(ll.Message, "advertising on the LAN") || ll.Level == "error"
	})
	var ll labLogLine
	_ = json.Unmarshal([]byte(l), &ll)
	if ll.Level == "error" {
		s.dump()
		s.t.Fatalf("%s: %s: %s", s.name, ll.Message, ll.Error)
	}
	s.ad = ll
	return ll
}

// stop sends SIGTERM, checks that serve exits 0 within 2 s as the README
// promises, and returns what it printed on stdout.
func (s *labServer) stop() []string {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	s.wantExit(2*time.Second, 0)
	return s.output(procStdout)
}

// labRun runs lanmsg ARGS on host i of lab to completion (at most d) and
// returns it, exited.
func labRun(t *testing.T, lab *netlab.Lab, bin string, i int, d time.Duration, args ...string) *labProc {
	t.Helper()
	p := startLabProc(t, fmt.Sprintf("lanmsg %s on h%d", strings.Join(args, " "), i), labCmd(lab, bin, i, "", args...))
	p.exit(d)
	return p
}

// labService is a server as 'lanmsg browse --json' prints it (README,
// "lanmsg browse"); declared here rather than reusing browse_cmd.go's type so
// that a change of the documented format fails the tests.
type labService struct {
	Name  string            `json:"name"`
	Host  string            `json:"host"`
	Addrs []string          `json:"addrs"`
	Port  int               `json:"port"`
	TXT   map[string]string `json:"txt"`
	URL   string            `json:"url"`   // the chat page's
	Trust string            `json:"trust"` // what the host's pins make of it
}

// labBrowse runs 'lanmsg browse --json --timeout D' on host i, checks that it
// exits 0, and returns the servers it listed, in order.
func labBrowse(t *testing.T, lab *netlab.Lab, bin string, i int, d time.Duration) []labService {
	t.Helper()
	p := labRun(t, lab, bin, i, d+10*time.Second, "browse", "--json", "--timeout", d.String())
	p.wantCode(0)
	var found []labService
	for _, l := range p.output(procStdout) {
		var s labService
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("browse --json printed %q: %v", l, err)
		}
		found = append(found, s)
	}
	return found
}

// serveTextLine matches a message line of 'lanmsg serve --format text'.
var serveTextLine = regexp.MustCompile(`^\[([0-9.]+):[0-9]+\] : (.*)$`)

// messagesFrom returns the messages in serve's text output, as "PEERIP MESSAGE".
func messagesFrom(t *testing.T, lines []string) []string {
	t.Helper()
	var got []string
	for _, l := range lines {
		m := serveTextLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("serve printed %q, which is not a message line", l)
			continue
		}
		got = append(got, m[1]+" "+m[2])
	}
	return got
}
