package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// Tests that run lanmsg in this process, and the processes they start
	// (lab hosts included), keep keys and pins in a dir of their own,
	// never the user's config dir.
	// (Not when this binary runs as lanmsg for a script: the script set
	// its own.)
	if filepath.Base(os.Args[0]) != "lanmsg" {
		dir, err := os.MkdirTemp("", "lanmsg-test-config")
		if err != nil {
			panic(err)
		}
		os.Setenv("XDG_CONFIG_HOME", dir)
	}
	testscript.Main(m, map[string]func(){
		"lanmsg": func() {
			plainOnly = os.Getenv("LANMSG_TEST_PLAIN_CLIENT") == "1"
			os.Exit(runWith(testLAN(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the end-to-end scripts in testdata/script against the
// lanmsg binary (this test binary, run as lanmsg). Besides testscript's own
// commands, scripts have:
//
//	serve [flags]      start 'lanmsg serve --no-advertise --listen 127.0.0.1:0'
//	                   in the background; wait until it listens; $SERVER is its
//	                   address. Its stdout and stderr go to serve.stdout and
//	                   serve.stderr.
//	stopserve          send SIGTERM and check that it exits 0 within 2 s.
//	pyserver           start the tutorial's Python server on 127.0.0.1:0;
//	                   $PYSERVER is its address; its output goes to pyserver.stdout.
//	stoppy             stop it.
//	waitline FILE N    wait until FILE has at least N lines.
func TestScripts(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("TESTDATA", testdata)
			env.Setenv("PYTHON", python(t))
			// Keys and pins live in the script's own dir, never the
			// user's.
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"serve":     cmdServe,
			"stopserve": cmdStopServe,
			"pyserver":  cmdPyServer,
			"stoppy":    cmdStopPy,
			"waitline":  cmdWaitLine,
			"httpget":   cmdHTTPGet,
		},
	})
}

// python returns the Python interpreter for the tutorial fixtures.
func python(t *testing.T) string {
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the tutorial interop tests and was not found: %v", err)
	}
	return p
}

// background is a process a script started.
type background struct {
	cmd    *exec.Cmd
	copied chan struct{} // closed when its log has been copied out
}

var (
	bgMu sync.Mutex
	bg   = map[*testscript.TestScript]map[string]*background{}
)

func setBackground(ts *testscript.TestScript, name string, b *background) {
	bgMu.Lock()
	defer bgMu.Unlock()
	if bg[ts] == nil {
		bg[ts] = map[string]*background{}
	}
	bg[ts][name] = b
	ts.Defer(func() {
		bgMu.Lock()
		defer bgMu.Unlock()
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			<-b.copied // Wait closes the pipe: read it to the end first
			_ = b.cmd.Wait()
		}
		delete(bg[ts], name)
	})
}

func getBackground(ts *testscript.TestScript, name string) *background {
	bgMu.Lock()
	defer bgMu.Unlock()
	b := bg[ts][name]
	if b == nil {
		ts.Fatalf("no %s running", name)
	}
	return b
}

// lookPath finds a program on the script's PATH.
func lookPath(ts *testscript.TestScript, prog string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	ts.Fatalf("%s not found on PATH", prog)
	return ""
}

// startBackground starts a process with stdout to a file, reads its stderr
// until ready returns a value, and copies the rest of stderr to a file. With
// ready nil, it returns at once, and copies both.
func startBackground(ts *testscript.TestScript, name string, cmd *exec.Cmd, readyFrom string, ready func(line string) (string, bool)) string {
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	out, err := os.Create(ts.MkAbs(name + ".stdout"))
	ts.Check(err)
	errLog, err := os.Create(ts.MkAbs(name + ".stderr"))
	ts.Check(err)
	var pipe io.ReadCloser
	if readyFrom == "stdout" {
		cmd.Stderr = errLog
		pipe, err = cmd.StdoutPipe()
	} else {
		cmd.Stdout = out
		pipe, err = cmd.StderrPipe()
	}
	ts.Check(err)
	ts.Check(cmd.Start())
	b := &background{cmd: cmd, copied: make(chan struct{})}
	setBackground(ts, name, b)

	rest := errLog
	if readyFrom == "stdout" {
		rest = out
	}
	found := make(chan string, 1)
	go func() {
		defer close(b.copied)
		defer out.Close()
		defer errLog.Close()
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(rest, sc.Text())
			if !sent && ready != nil {
				if v, ok := ready(sc.Text()); ok {
					found <- v
					sent = true
				}
			}
		}
		if !sent {
			close(found)
		}
	}()
	if ready == nil {
		return ""
	}
	select {
	case v, ok := <-found:
		if !ok {
			<-b.copied
			log, _ := os.ReadFile(ts.MkAbs(name + ".stderr"))
			ts.Fatalf("%s exited before it was ready:\n%s", name, log)
		}
		return v
	case <-time.After(10 * time.Second):
		ts.Fatalf("%s not ready within 10s", name)
	}
	return ""
}

func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR", "WORK", "TESTDATA", "SYSTEMROOT", insideNetnsEnv} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	// testscript.Main runs the test binary as lanmsg when it is called so.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GO") {
			env = append(env, kv)
		}
	}
	return env
}

func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! serve")
	}
	readyFile := ts.MkAbs("serve.ready")
	argv := append([]string{"serve", "--no-advertise", "--listen", "127.0.0.1:0", "--log-format", "json", "--ready-file", readyFile}, args...)
	cmd := exec.Command(lookPath(ts, "lanmsg"), argv...)
	startBackground(ts, "serve", cmd, "stderr", nil)
	info, err := waitReady(readyFile, getBackground(ts, "serve").copied, 10*time.Second)
	if err != nil {
		log, _ := os.ReadFile(ts.MkAbs("serve.stderr"))
		ts.Fatalf("serve: %v\n%s", err, log)
	}
	ts.Setenv("SERVER", info.Addr)
}

func cmdStopServe(ts *testscript.TestScript, neg bool, args []string) {
	b := getBackground(ts, "serve")
	ts.Check(b.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() {
		<-b.copied // Wait closes the pipe: read it to the end first
		done <- b.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil && !neg {
			ts.Fatalf("lanmsg serve did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(2 * time.Second):
		_ = b.cmd.Process.Kill()
		ts.Fatalf("lanmsg serve did not exit within 2s of SIGTERM")
	}
}

func cmdPyServer(ts *testscript.TestScript, neg bool, args []string) {
	cmd := exec.Command(ts.Getenv("PYTHON"), "-u", filepath.Join(ts.Getenv("TESTDATA"), "tutorial_server.py"), "127.0.0.1", "0")
	addr := startBackground(ts, "pyserver", cmd, "stdout", func(line string) (string, bool) {
		a, ok := strings.CutPrefix(line, "[Starting] Server listening on ")
		return a, ok
	})
	ts.Setenv("PYSERVER", addr)
}

func cmdStopPy(ts *testscript.TestScript, neg bool, args []string) {
	b := getBackground(ts, "pyserver")
	_ = b.cmd.Process.Kill()
	<-b.copied // Wait closes the pipe: read it to the end first
	_ = b.cmd.Wait()
}

// cmdWaitLine waits until a file has at least N lines: the tutorial's server
// prints a message after it has read it, which is the only signal it gives.
func cmdWaitLine(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitline FILE N")
	}
	var n int
	_, err := fmt.Sscan(args[1], &n)
	ts.Check(err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		if strings.Count(string(data), "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s has fewer than %d lines after 10s:\n%s", args[0], n, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdHTTPGet: httpget URL FILE fetches URL and writes the status line, the
// headers and the body to FILE; "! httpget URL" expects the request to fail.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && (!neg || len(args) != 1) {
		ts.Fatalf("usage: httpget URL FILE")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(args[0])
	if neg {
		if err == nil {
			_ = resp.Body.Close()
			ts.Fatalf("GET %s: %s, want a failure", args[0], resp.Status)
		}
		return
	}
	ts.Check(err)
	defer func() { _ = resp.Body.Close() }()
	var b strings.Builder
	b.WriteString(resp.Proto + " " + resp.Status + "\n")
	ts.Check(resp.Header.Write(&b))
	b.WriteString("\n")
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	b.Write(body)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(b.String()), 0o644))
}
