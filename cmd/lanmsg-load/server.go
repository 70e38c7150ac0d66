package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
)

// server is a `lanmsg serve` process started for a run.
type server struct {
	cmd       *exec.Cmd
	Addr      string // where it listens
	DebugAddr string // its --debug-listen address
	Out       string // the file its stdout goes to
	logDone   chan struct{}
	Log       strings.Builder // its stderr (JSON lines)
	tmp       string          // a directory to remove when it stops
}

// startServer runs `BIN serve` on 127.0.0.1:0 without mDNS, with its debug
// endpoint on loopback and stdout to the file out, plus any extra flags. It
// returns once the server listens.
func startServer(bin, out string, extra ...string) (*server, error) {
	return startServerEnv(bin, out, nil, extra...)
}

// startServerEnv is startServer with the environment env. With env nil,
// the server gets this process's environment and a config dir of its own
// (its key, its data), removed when it stops: a benchmark never writes into
// the user's.
func startServerEnv(bin, out string, env []string, extra ...string) (*server, error) {
	args := append([]string{"serve", "--no-advertise", "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	var tmp string
	if env == nil {
		var err error
		if tmp, err = os.MkdirTemp("", "lanmsg-bench-config"); err != nil {
			return nil, err
		}
		env = append(os.Environ(), "XDG_CONFIG_HOME="+tmp)
	}
	cmd.Env = env
	s, err := startProc(cmd, out)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	s.tmp = tmp
	return s, nil
}

// startSink runs this program's sink mode (the benchmarks' reference) as a
// server, like startServer.
func startSink(out string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(exec.Command(self, "sink", "-listen", "127.0.0.1:0"), out)
}

// startProc starts cmd with stdout to the file out and waits for its
// "lanmsg serving" log line.
func startProc(cmd *exec.Cmd, out string) (*server, error) {
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = f
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	_ = f.Close() // the child has its own descriptor
	s := &server{cmd: cmd, Out: out, logDone: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(s.logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.Log.WriteString(line + "\n")
			var ev map[string]any
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			if a, ok := ev[session.FieldDebugAddr].(string); ok && a != "" {
				s.DebugAddr = a
			}
			if msg, _ := ev[zerolog.MessageFieldName].(string); strings.HasPrefix(msg, "lanmsg serving") {
				s.Addr, _ = ev[session.FieldAddr].(string)
				ready <- nil
			}
		}
		ready <- errors.New("server exited before listening")
	}()
	select {
	case err := <-ready:
		if err != nil {
			<-s.logDone
			return nil, fmt.Errorf("%w:\n%s", err, s.Log.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-s.logDone // stderr ends with the process
		_ = cmd.Wait()
		return nil, fmt.Errorf("server not listening after 10s:\n%s", s.Log.String())
	}
	return s, nil
}

// Pid is the server's process id.
func (s *server) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the exit, returning how long it took.
func (s *server) Stop() (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	<-s.logDone
	err := s.cmd.Wait()
	took := time.Since(start)
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
	return took, err
}

// State reads the server's /debug/state (gc=true runs a GC first).
func (s *server) State(gc bool) (map[string]float64, error) {
	url := "http://" + s.DebugAddr + "/debug/state"
	if gc {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, err
	}
	st := make(map[string]float64, len(raw)) // the numbers; budget and hosts are objects
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			st[k] = f
		}
	}
	return st, nil
}

// procStatus returns a field of /proc/PID/status in bytes (for VmRSS, VmHWM
// and the like, given in kB).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime returns the user+system CPU time the process has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces) in parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// countLines counts the lines of a file.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		m, err := f.Read(buf)
		for _, c := range buf[:m] {
			if c == '\n' {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
