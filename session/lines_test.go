package session

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// readAll collects every line of src until it returns an error.
func readAll(t *testing.T, src *Lines) ([]string, error) {
	t.Helper()
	var lines []string
	for {
		b, err := src.Next(t.Context())
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(b))
	}
}

func TestLines(t *testing.T) {
	long := strings.Repeat("y", 200<<10) // spans several 64 KiB chunks
	for _, tc := range []struct {
		name  string
		in    io.Reader
		max   int
		lines []string
		err   error
	}{
		{"lines", strings.NewReader("one\ntwo\n"), 16, []string{"one", "two"}, io.EOF},
		{"crlf", strings.NewReader("one\r\ntwo\r\n\r\n"), 16, []string{"one", "two", ""}, io.EOF},
		{"last line without newline", strings.NewReader("one\ntwo"), 16, []string{"one", "two"}, io.EOF},
		{"empty", strings.NewReader(""), 16, nil, io.EOF},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("one\r\ntwo\nthree")), 16, []string{"one", "two", "three"}, io.EOF},
		{"halves", iotest.HalfReader(strings.NewReader("a line\nanother line\n")), 16, []string{"a line", "another line"}, io.EOF},
		{"exactly the limit", strings.NewReader(strings.Repeat("x", 16) + "\r\n"), 16, []string{strings.Repeat("x", 16)}, io.EOF},
		{"too long", strings.NewReader("ok\n" + strings.Repeat("x", 19) + "\nafter\n"), 16, []string{"ok"}, ErrTooLong},
		{"too long across reads", iotest.OneByteReader(strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\n")), 16, []string{"ok"}, ErrTooLong},
		{"too long at the end", strings.NewReader("ok\n" + strings.Repeat("x", 40)), 16, []string{"ok"}, ErrTooLong},
		{"a line over several chunks", strings.NewReader("a\n" + long + "\r\nb\n" + long), 1 << 20, []string{"a", long, "b", long}, io.EOF},
		{"read error", iotest.TimeoutReader(strings.NewReader(strings.Repeat("z", 100<<10) + "\n")), 1 << 20, nil, iotest.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := NewLines(tc.in, tc.max)
			defer src.Stop()
			lines, err := readAll(t, src)
			if !errors.Is(err, tc.err) {
				t.Errorf("ended with %v, want %v", err, tc.err)
			}
			if strings.Join(lines, "|") != strings.Join(tc.lines, "|") || len(lines) != len(tc.lines) {
				t.Errorf("got %d lines %.80q, want %d %.80q", len(lines), lines, len(tc.lines), tc.lines)
			}
		})
	}
}

// TestLinesSkipsTooLong: after a line too long, the next line is the one
// after it, not the rest of it (chat on a terminal goes on).
func TestLinesSkipsTooLong(t *testing.T) {
	for _, in := range []io.Reader{
		strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\nafter\n"),
		iotest.OneByteReader(strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\nafter\n")),
		strings.NewReader("ok\n" + strings.Repeat("x", 200<<10) + "\nafter\n"),
	} {
		src := NewLines(in, 16)
		var got []string
		for n := 1; ; n++ {
			b, err := src.Next(t.Context())
			if errors.Is(err, ErrTooLong) {
				got = append(got, "<too long: line "+strconv.Itoa(n)+">")
				continue
			}
			if err != nil {
				break
			}
			got = append(got, string(b))
		}
		src.Stop()
		if want := "ok|<too long: line 2>|after"; strings.Join(got, "|") != want {
			t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
		}
	}
}

// TestLinesDrained: drained reports input used up, without
// waiting: the moment send flushes.
func TestLinesDrained(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	src := NewLines(r, 16)
	defer src.Stop()
	go func() { _, _ = w.Write([]byte("a\nb\n")) }()
	if b, err := src.Next(t.Context()); err != nil || string(b) != "a" || src.Drained() {
		t.Fatalf("got %q, %v, drained %v; want a, not drained", b, err, src.Drained())
	}
	if b, err := src.Next(t.Context()); err != nil || string(b) != "b" || !src.Drained() {
		t.Fatalf("got %q, %v, drained %v; want b, drained", b, err, src.Drained())
	}
}

// TestLinesDrainedAtEnd: the end of the input waiting does not
// keep the last lines from being flushed on their own, as they were when
// stdin was read with bufio (a server that closed early is then found out
// when "!DISCONNECT" follows).
func TestLinesDrainedAtEnd(t *testing.T) {
	src := NewLines(strings.NewReader("a\n"), 16)
	defer src.Stop()
	if b, err := src.Next(t.Context()); err != nil || string(b) != "a" {
		t.Fatalf("got %q, %v", b, err)
	}
	sessiontest.WaitFor(t, 5*time.Second, "the end of the input to be read", func() bool { return len(src.full) == 1 })
	if !src.Drained() {
		t.Error("not drained with only the end of the input waiting")
	}
	if _, err := src.Next(t.Context()); err != io.EOF {
		t.Errorf("got %v, want io.EOF", err)
	}
}

// TestLinesCancel: a source waiting on input that never comes
// returns when its context ends.
func TestLinesCancel(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	src := NewLines(r, 16)
	defer src.Stop()
	go func() { _, _ = w.Write([]byte("one\n")) }() // and then nothing, pipe open
	if b, err := src.Next(ctx); err != nil || string(b) != "one" {
		t.Fatalf("got %q, %v", b, err)
	}
	done := make(chan error, 1)
	go func() { _, err := src.Next(ctx); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("next did not return within 2 s of the context's end")
	}
}
