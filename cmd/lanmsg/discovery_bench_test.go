//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Discovery benchmarks: the real lanmsg command (this test binary, run as
// lanmsg) in a two-host LAN of network namespaces made with netlab, so that no
// multicast leaves the machine. `lanmsg serve --name bench` runs on host 1;
// the measured commands run on host 2. They skip, saying why, without root.
//
//	go test -run '^$' -bench 'SendToName|BrowseFirstLine' -benchtime 20x ./cmd/lanmsg/

// BenchmarkSendToName times `lanmsg send --to bench hello`, process start to
// exit: browsing for the name, connecting, sending and the confirmation.
func BenchmarkSendToName(b *testing.B) {
	bin, lab := benchLab(b)
	var ds []time.Duration
	for b.Loop() {
		cmd := benchLabCmd(lab, bin, 2, "send", "--to", "bench", "--log-format", "json", "hello")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("send --to bench: %v\n%s", err, stderr.String())
		}
		ds = append(ds, time.Since(start))
	}
	reportMillis(b, ds)
}

// BenchmarkBrowseFirstLine times `lanmsg browse` from process start to its
// first line of output (the server on host 1), then stops it.
func BenchmarkBrowseFirstLine(b *testing.B) {
	bin, lab := benchLab(b)
	var ds []time.Duration
	for b.Loop() {
		cmd := benchLabCmd(lab, bin, 2, "browse", "--timeout", "10s", "--log-format", "json")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		d := time.Since(start)
		_ = cmd.Process.Kill() // by PID: the browse started above
		_ = cmd.Wait()
		if err != nil || !strings.HasPrefix(line, "bench ") {
			b.Fatalf("browse printed %q (%v), want the server named bench", line, err)
		}
		ds = append(ds, d)
	}
	reportMillis(b, ds)
}

// reportMillis reports the mean and the median of ds in milliseconds.
func reportMillis(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	slices.Sort(ds)
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(ds)), "ms/op")
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

// benchLab returns the lanmsg binary and a two-host lab with `lanmsg serve
// --name bench` advertising on host 1, stopped and removed when the benchmark
// ends.
func benchLab(b *testing.B) (string, *netlab.Lab) {
	b.Helper()
	bin := benchLanmsg(b) // before the lab, so its directory outlives the lab's processes
	lab := netlab.Up(b, 2)
	for i, name := range []string{"benchh1", "benchh2"} {
		lab.SetHosts(i+1, "127.0.0.1\tlocalhost\n"+lab.Addr(i+1).String()+"\t"+name+"\n")
	}
	srv := benchLabCmd(lab, bin, 1, "serve", "--name", "bench", "--log-format", "json")
	srv.Stdout = io.Discard
	errPipe, err := srv.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM) // by PID: the server started above
		_ = srv.Wait()
	})
	advertised := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errPipe)
		once := false
		for sc.Scan() {
			var ev struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.HasPrefix(ev.Message, "advertising on the LAN") && !once {
				once = true
				close(advertised)
			}
		}
	}()
	select {
	case <-advertised:
	case <-time.After(15 * time.Second):
		b.Fatal("lanmsg serve on host 1 did not advertise within 15s")
	}
	return bin, lab
}

// benchLabCmd is lanmsg with args on host i of lab, allowed to use mDNS there
// only (see guard_test.go), in a session of its own with no terminal.
func benchLabCmd(lab *netlab.Lab, bin string, i int, args ...string) *exec.Cmd {
	cmd := lab.CommandAs(i, []string{"benchh1", "benchh2"}[i-1], bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, insideNetnsEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, insideNetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// benchLanmsg returns a hard link (or copy) of this test binary named lanmsg,
// which TestMain runs as the lanmsg command.
func benchLanmsg(b *testing.B) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(b.TempDir(), "lanmsg")
	if os.Link(exe, dst) == nil {
		return dst
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
	return dst
}
