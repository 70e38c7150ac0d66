// Package sessiontest holds helpers that the tests of several lanmsg
// packages share, as net/http/httptest does for net/http: a buffer that a
// server writes to from many goroutines, a log that tests wait on, and a
// wait for a condition that gives no signal of its own.
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

// Log keeps the log lines of a server, in process (as an io.Writer given to
// zerolog, which writes one line per Write) or read from a process's stderr
// (Add, then Close at EOF), so that tests wait for an event ("session
// closed") instead of sleeping.
type Log struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{} // closed and replaced on every line, and at EOF
	eof   bool
}

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{cond: make(chan struct{})} }

// Write records p, one line per line it holds.
func (l *Log) Write(p []byte) (int, error) {
	for line := range strings.Lines(string(p)) {
		l.Add(strings.TrimSuffix(line, "\n"))
	}
	return len(p), nil
}

// Add records one line.
func (l *Log) Add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	close(l.cond)
	l.cond = make(chan struct{})
	l.mu.Unlock()
}

// Close marks the end of the log (the process exited): Wait then fails at
// once instead of at its timeout.
func (l *Log) Close() {
	l.mu.Lock()
	l.eof = true
	close(l.cond)
	l.cond = make(chan struct{})
	l.mu.Unlock()
}

// Count returns how many lines contain every one of subs.
func (l *Log) Count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// String returns every line, each ended by a newline.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Tail returns the last n lines, for failure messages.
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}

// Wait waits until at least n lines contain every one of subs, and fails
// the test, with the log's last lines, at timeout or at the log's end.
func (l *Log) Wait(t testing.TB, timeout time.Duration, n int, subs ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		ch, eof := l.cond, l.eof
		l.mu.Unlock()
		if l.Count(subs...) >= n {
			return
		}
		if eof {
			t.Fatalf("the log ended before %d lines with %q; its last lines:\n%s", n, subs, l.Tail(30))
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %d log lines with %q (have %d); its last lines:\n%s", timeout, n, subs, l.Count(subs...), l.Tail(30))
		}
	}
}
