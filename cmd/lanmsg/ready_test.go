package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitReady waits for a server's --ready-file at path to appear, and
// returns what it says. exited is closed when the server has exited: it then
// stops waiting. The file is written whole (renamed into place), so it is
// complete as soon as it exists.
func waitReady(path string, exited <-chan struct{}, timeout time.Duration) (readyInfo, error) {
	var info readyInfo
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if err := json.Unmarshal(b, &info); err != nil {
				return info, fmt.Errorf("ready file %s: %w: %q", path, err, b)
			}
			return info, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return info, err
		}
		select {
		case <-tick.C:
		case <-exited:
			return info, fmt.Errorf("the server exited before writing its ready file %s", path)
		case <-deadline.C:
			return info, fmt.Errorf("no ready file %s within %v", path, timeout)
		}
	}
}

// TestServeReadyFile: serve --ready-file appears, whole, once the server
// listens, says where and with which key, and is removed when serve stops.
func TestServeReadyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg")
	ready := filepath.Join(dir, "serve.ready")
	serve := lanmsgProcess(t, "--log-format", "json", "serve", "--config-dir", cfg, "--no-advertise",
		"--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0", "--ready-file", ready)
	var log bytes.Buffer
	serve.Stderr = &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = serve.Wait(); close(exited) }()
	defer func() {
		_ = serve.Process.Kill() // by PID, if it still runs
		<-exited
	}()
	info, err := waitReady(ready, exited, 10*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	host, port, err := net.SplitHostPort(info.Addr)
	if err != nil || host != "127.0.0.1" || port != strconv.Itoa(info.Port) || info.Port == 0 {
		t.Errorf("ready file says addr %q, port %d", info.Addr, info.Port)
	}
	id, err := lanmsgProcess(t, "id", "--config-dir", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	if fp, _, _ := strings.Cut(string(id), "\n"); info.Fingerprint != fp {
		t.Errorf("ready file says fingerprint %q, lanmsg id %q", info.Fingerprint, fp)
	}
	for _, a := range []string{info.Addr, info.DebugAddr} { // both listen already
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatalf("the ready file names %s, which does not answer: %v", a, err)
		}
		c.Close()
	}
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the ready file is still there after serve stopped (%v)", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".serve.ready.*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestServeReadyFileUnwritable: a --ready-file that cannot be written stops
// serve with an error and a hint, rather than leave a waiting script to time
// out.
func TestServeReadyFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	serve := lanmsgProcess(t, "serve", "--config-dir", filepath.Join(dir, "cfg"), "--no-advertise",
		"--listen", "127.0.0.1:0", "--ready-file", filepath.Join(dir, "missing", "serve.ready"))
	out, err := serve.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit %v, want %d:\n%s", err, exitFailure, out)
	}
	if !strings.Contains(string(out), "lanmsg: error: --ready-file: ") || !strings.Contains(string(out), "lanmsg: hint: give a path in a directory that exists") {
		t.Errorf("output:\n%s", out)
	}
}
