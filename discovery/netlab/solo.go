//go:build linux

package netlab

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// SoloEnv is set to "1" in the environment of a test re-executed by Solo.
const SoloEnv = "LANMSG_NETLAB_SOLO"

// soloScript prepares the new namespace: lo up, multicast on lo, multicast routed via lo.
const soloScript = `ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"`

// Solo makes the calling top-level test run inside a fresh network namespace whose loopback
// carries multicast. Use it as the first statement of the test:
//
//	if !netlab.Solo(t) {
//		return
//	}
//
// Inside the namespace (SoloEnv set) it returns true and the test proceeds. Outside it re-runs
// this test binary with -test.run=^Name$ under `unshare -n`, streams the inner output to
// t.Log, and returns false: the outer test fails if the inner one failed or did not run, and
// is skipped (not passed) if the inner one skipped. Without root or unshare it skips.
func Solo(t *testing.T) bool {
	t.Helper()
	if os.Getenv(SoloEnv) == "1" {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("netlab.Solo: call it from a top-level test, not the subtest %s", t.Name())
	}
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root to create a network namespace (unshare -n)")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("netlab: cannot create a network namespace with unshare -n: %v", err)
	}
	args := []string{"-n", "sh", "-c", soloScript, "netlab", os.Args[0],
		"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.v", "-test.count=1"}
	if f := flag.Lookup("test.timeout"); f != nil && f.Value.String() != "0s" {
		args = append(args, "-test.timeout="+f.Value.String())
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), SoloEnv+"=1")
	lines, err := runStreaming(t, cmd)
	verdict(t, t.Name(), lines, err)
	return false
}

// runStreaming runs cmd, logging each line of its combined output as it arrives.
func runStreaming(t *testing.T, cmd *exec.Cmd) ([]string, error) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("netlab: pipe: %v", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		_ = pw.Close()
		_ = pr.Close()
		t.Fatalf("netlab: start %v: %v", cmd.Args, err)
	}
	_ = pw.Close()
	var lines []string
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			t.Log(sc.Text())
		}
	}()
	<-done
	_ = pr.Close()
	err = cmd.Wait()
	return lines, err
}

// verdict turns the inner test's result into the outer test's: fail, skip, or pass.
func verdict(t *testing.T, name string, lines []string, runErr error) {
	t.Helper()
	if runErr != nil {
		t.Fatalf("netlab: inner run of %s failed: %v", name, runErr)
	}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "--- SKIP: "+name+" ") {
			t.Skipf("netlab: inner run of %s was skipped (see log above)", name)
		}
		if strings.HasPrefix(l, "--- PASS: "+name+" ") {
			return
		}
	}
	t.Fatalf("netlab: inner run of %s did not report PASS", name)
}
