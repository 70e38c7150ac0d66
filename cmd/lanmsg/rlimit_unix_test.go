//go:build unix

package main

import (
	"syscall"
	"testing"
)

// advRaiseNofile makes sure this process (and so the server it starts) may
// open n file descriptors, or skips the test saying why.
func advRaiseNofile(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	// Rlimit's fields are uint64 on Linux and macOS, int64 on the BSDs.
	if uint64(rl.Cur) >= n {
		return
	}
	if uint64(rl.Max) < n {
		t.Skipf("RLIMIT_NOFILE hard limit is %d; this test needs %d descriptors (raise it with ulimit -Hn)", rl.Max, n)
	}
	old := rl
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}
