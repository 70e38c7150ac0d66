// Package sessiontest holds helpers that the tests of several lanmsg
// packages share, as net/http/httptest does for net/http: a buffer that a
// server writes to from many goroutines, and a wait for a condition that
// gives no signal of its own.
package sessiontest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, for a server's
// output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns what was written split into lines, without the newlines;
// nil when nothing was.
func (s *SyncBuffer) Lines() []string {
	str := s.String()
	if str == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(str, "\n"), "\n")
}

// WaitFor polls cond until it holds, and fails the test after timeout. Use
// it only where the thing awaited gives no signal (output written by another
// goroutine or process).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
