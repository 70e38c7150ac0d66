package main

// How send and chat stop reading their input: they answer Ctrl-C and
// SIGTERM while they wait on stdin (the line source selects on the
// context), and chat reports a line it cannot send as send does.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
)

// readAll collects every line of src until it returns an error.
func readAll(t *testing.T, src *lineSource) ([]string, error) {
	t.Helper()
	var lines []string
	for {
		b, err := src.next()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(b))
	}
}

func TestLineSource(t *testing.T) {
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
		{"too long", strings.NewReader("ok\n" + strings.Repeat("x", 19) + "\nafter\n"), 16, []string{"ok"}, errTooLong},
		{"too long across reads", iotest.OneByteReader(strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\n")), 16, []string{"ok"}, errTooLong},
		{"too long at the end", strings.NewReader("ok\n" + strings.Repeat("x", 40)), 16, []string{"ok"}, errTooLong},
		{"a line over several chunks", strings.NewReader("a\n" + long + "\r\nb\n" + long), 1 << 20, []string{"a", long, "b", long}, io.EOF},
		{"read error", iotest.TimeoutReader(strings.NewReader(strings.Repeat("z", 100<<10) + "\n")), 1 << 20, nil, iotest.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newLineSource(t.Context(), tc.in, tc.max)
			defer src.stop()
			lines, err := readAll(t, src)
			if !errors.Is(err, tc.err) {
				t.Errorf("ended with %v, want %v", err, tc.err)
			}
			if strings.Join(lines, "|") != strings.Join(tc.lines, "|") || len(lines) != len(tc.lines) {
				t.Errorf("got %d lines %.80q, want %d %.80q", len(lines), lines, len(tc.lines), tc.lines)
			}
			if want := "line " + strconv.Itoa(len(tc.lines)+1); tc.err != io.EOF && src.name() != want {
				t.Errorf("the error names %s, want %s", src.name(), want)
			}
		})
	}
}

// TestLineSourceSkipsTooLong: after a line too long, the next line is
// the one after it, not the rest of it (chat on a terminal goes on).
func TestLineSourceSkipsTooLong(t *testing.T) {
	for _, in := range []io.Reader{
		strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\nafter\n"),
		iotest.OneByteReader(strings.NewReader("ok\n" + strings.Repeat("x", 40) + "\nafter\n")),
		strings.NewReader("ok\n" + strings.Repeat("x", 200<<10) + "\nafter\n"),
	} {
		src := newLineSource(t.Context(), in, 16)
		var got []string
		for {
			b, err := src.next()
			if errors.Is(err, errTooLong) {
				got = append(got, "<too long: "+src.name()+">")
				continue
			}
			if err != nil {
				break
			}
			got = append(got, string(b))
		}
		src.stop()
		if want := "ok|<too long: line 2>|after"; strings.Join(got, "|") != want {
			t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
		}
	}
}

// TestLineSourceDrained: drained reports input used up, without
// waiting: the moment send flushes.
func TestLineSourceDrained(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	src := newLineSource(t.Context(), r, 16)
	defer src.stop()
	go func() { _, _ = w.Write([]byte("a\nb\n")) }()
	if b, err := src.next(); err != nil || string(b) != "a" || src.drained() {
		t.Fatalf("got %q, %v, drained %v; want a, not drained", b, err, src.drained())
	}
	if b, err := src.next(); err != nil || string(b) != "b" || !src.drained() {
		t.Fatalf("got %q, %v, drained %v; want b, drained", b, err, src.drained())
	}
}

// TestLineSourceDrainedAtEnd: the end of the input waiting does not
// keep the last lines from being flushed on their own, as they were when
// stdin was read with bufio (a server that closed early is then found out
// when "!DISCONNECT" follows).
func TestLineSourceDrainedAtEnd(t *testing.T) {
	src := newLineSource(t.Context(), strings.NewReader("a\n"), 16)
	defer src.stop()
	if b, err := src.next(); err != nil || string(b) != "a" {
		t.Fatalf("got %q, %v", b, err)
	}
	waitFor(t, func() bool { return len(src.full) == 1 }, "the end of the input to be read")
	if !src.drained() {
		t.Error("not drained with only the end of the input waiting")
	}
	if _, err := src.next(); err != io.EOF {
		t.Errorf("got %v, want io.EOF", err)
	}
}

// TestLineSourceCancel: a source waiting on input that never comes
// returns when its context ends.
func TestLineSourceCancel(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	src := newLineSource(ctx, r, 16)
	defer src.stop()
	go func() { _, _ = w.Write([]byte("one\n")) }() // and then nothing, pipe open
	if b, err := src.next(); err != nil || string(b) != "one" {
		t.Fatalf("got %q, %v", b, err)
	}
	done := make(chan error, 1)
	go func() { _, err := src.next(); done <- err }()
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

// TestDeliverCancel: deliver, waiting on a stdin that stays open, stops
// when ctx ends: it aborts the connection and returns ctx's error.
func TestDeliverCancel(t *testing.T) {
	addr, out := startServer(t, session.Text)
	cl, err := session.Dial(t.Context(), addr, session.ClientConfig{MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := newLineSource(ctx, r, 1<<20)
	defer src.stop()
	log := zerolog.New(zerolog.NewTestWriter(t))
	done := make(chan error, 1)
	go func() { done <- deliver(ctx, cl, src, addr, 1<<20, &log) }()
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), " : one\n") }, "the first line to arrive")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("deliver returned %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("deliver did not return within 2 s of the context's end")
	}
	if err := cl.Flush(); !errors.Is(err, session.ErrClientClosed) {
		t.Errorf("the client is not closed after deliver stopped: Flush returned %v", err)
	}
}

// lanmsgProcess returns a command running this test binary as lanmsg (see
// TestMain), outside any test network namespace.
func lanmsgProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: append([]string{"lanmsg"}, args...)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, insideNetnsEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// TestSendSIGTERM: `(echo one; sleep 30) | lanmsg send --server ...`
// ends promptly on SIGTERM, interrupted (130).
func TestSendSIGTERM(t *testing.T) {
	addr, out := startServer(t, session.Text)
	cmd := lanmsgProcess(t, "--log-format", "json", "send", "--server", addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if _, err := io.WriteString(stdin, "one\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), " : one\n") }, "the first line to arrive")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("lanmsg send did not end within 2 s of SIGTERM; stderr:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, stderr.String())
	}
	if !strings.Contains(stderr.String(), "lanmsg: interrupted\n") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
}

// TestChatTooLongPipe: from a pipe, a line over --max-payload stops
// chat as it stops send: it leaves, confirming what was sent, and exits 2
// naming the line; stdout has only chat events.
func TestChatTooLongPipe(t *testing.T) {
	_, addr, out := startServerCtl(t)
	in := "one\n" + strings.Repeat("x", 100) + "\nthree\n"
	code, stdout, stderr := runFake(t, refusingLAN{}, in, "chat", "--server", addr, "--as", "script", "--max-payload", "64")
	if code != exitUsage {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	if !strings.Contains(stderr, "lanmsg: error: line 2 is longer than the 64 limit") || !strings.Contains(stderr, "lanmsg: hint: ") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "* here: script") {
		t.Errorf("stdout must hold only chat events:\n%s", stdout)
	}
	if !strings.Contains(out.String(), " : one\n") || strings.Contains(out.String(), "xxx") || strings.Contains(out.String(), "three") {
		t.Errorf("server output:\n%s", out.String())
	}
}

// TestChatReadError: an input that fails stops chat as it stops send.
func TestChatReadError(t *testing.T) {
	_, addr, out := startServerCtl(t)
	in := io.MultiReader(strings.NewReader("one\ntw"), iotest.ErrReader(errors.New("disk on fire")))
	var o, e bytes.Buffer
	code := runWith(refusingLAN{}, []string{"--log-format", "json", "chat", "--server", addr, "--as", "script"}, in, &o, &e)
	if code != exitFailure || !strings.Contains(e.String(), "lanmsg: error: reading line 2: disk on fire") {
		t.Errorf("exit %d, stderr:\n%s", code, e.String())
	}
	if strings.Contains(o.String(), "disk on fire") {
		t.Errorf("stdout must hold only chat events:\n%s", o.String())
	}
	if !strings.Contains(out.String(), " : one\n") {
		t.Errorf("server output:\n%s", out.String())
	}
}

// TestChatTooLongTerminal: typed on a terminal, a line too long gets a
// note on stderr, and chat goes on.
func TestChatTooLongTerminal(t *testing.T) {
	tty := openPTY(t)
	_, addr, out := startServerCtl(t)
	var o, e syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(refusingLAN{}, []string{"--log-format", "json", "chat", "--server", addr, "--as", "alice", "--max-payload", "64"}, tty.slave, &o, &e)
	}()
	waitFor(t, func() bool { return strings.Contains(o.String(), "* here: alice\n") }, "alice to join")
	tty.typeIn("one\n" + strings.Repeat("x", 100) + "\nthree\n")
	waitFor(t, func() bool { return strings.Contains(out.String(), " : three\n") }, "the line after the long one")
	tty.typeIn("/quit\n")
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d; stderr:\n%s", code, e.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("chat did not end; stderr:\n%s", e.String())
	}
	if !strings.Contains(e.String(), "lanmsg: line 2 is longer than the 64 limit") || strings.Contains(e.String(), "lanmsg: error") {
		t.Errorf("stderr:\n%s", e.String())
	}
	if lines := strings.Split(strings.TrimSuffix(o.String(), "\n"), "\n"); len(lines) != 1 {
		t.Errorf("stdout must hold only chat events:\n%s", o.String())
	}
	if !strings.Contains(out.String(), " : one\n") || strings.Contains(out.String(), "xxx") {
		t.Errorf("server output:\n%s", out.String())
	}
}

// chatRun runs the chat command in-process with ctx, as runWith would after
// parsing the flags.
func chatRun(t *testing.T, ctx context.Context, addr string, in io.Reader) (*syncBuffer, error) {
	t.Helper()
	c := &chatCmd{As: "alice"}
	c.Server, c.BrowseTimeout = addr, time.Second
	c.MaxPayload, c.ConnectTimeout, c.ConfirmTimeout = 1<<20, 5*time.Second, 5*time.Second
	log := zerolog.New(zerolog.NewTestWriter(t))
	out := &syncBuffer{}
	return out, c.Run(ctx, &log, streams{in, out, io.Discard}, refusingLAN{}, configDir(t.TempDir()))
}

// TestChatCtrlC: Ctrl-C, while chat waits for input, leaves normally.
func TestChatCtrlC(t *testing.T) {
	_, addr, out := startServerCtl(t)
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := chatRun(t, ctx, addr, r); done <- err }()
	if _, err := w.Write([]byte("before ctrl-c\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), " : before ctrl-c\n") }, "the line to arrive")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("chat returned %v, want nil (left normally)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("chat did not leave after Ctrl-C")
	}
}

// TestChatServerGone: the server stopping while chat waits for input
// ends chat with exit 4.
func TestChatServerGone(t *testing.T) {
	srv, addr, _ := startServerCtl(t)
	r, w := io.Pipe()
	defer r.Close()
	defer w.Close()
	done := make(chan error, 1)
	go func() { _, err := chatRun(t, t.Context(), addr, r); done <- err }()
	// chat tries TLS first (session 1, which this plain server refuses),
	// then joins in clear (session 2).
	waitFor(t, func() bool { ss := srv.Sessions(); return len(ss) == 1 && ss[0].ID >= 2 }, "chat to join after its TLS attempt")
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ce *cliError
		if !errors.As(err, &ce) || ce.code != exitUnconfirmed || !strings.Contains(err.Error(), "closed the chat") {
			t.Errorf("chat returned %v, want exit %d: closed the chat", err, exitUnconfirmed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chat did not end when the server stopped")
	}
}

// TestDeliverCancelWhileConfirming: a signal also ends a send that
// waits on a server that never confirms, at once rather than after
// --confirm-timeout.
func TestDeliverCancelWhileConfirming(t *testing.T) {
	gotDisconnect := make(chan struct{})
	addr := fakeServer(t, func(c net.Conn) { // reads everything, never closes
		var seen []byte
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			seen = append(seen, buf[:n]...)
			if bytes.Contains(seen, []byte("!DISCONNECT")) && gotDisconnect != nil {
				close(gotDisconnect)
				gotDisconnect = nil
			}
			if err != nil {
				return
			}
		}
	})
	waiting := gotDisconnect
	cl, err := session.Dial(t.Context(), addr, session.ClientConfig{ConfirmTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	log := zerolog.New(zerolog.NewTestWriter(t))
	done := make(chan error, 1)
	go func() { done <- deliver(ctx, cl, &argSource{args: []string{"waiting"}}, addr, 1<<20, &log) }()
	<-waiting // send is now waiting for the confirmation
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("deliver returned nil: an unconfirmed send passed for delivered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deliver still waiting 5s after cancel")
	}
}

// TestChatTinyMaxPayload: the hello is not a message, so a payload
// limit below its length does not stop chat from joining.
func TestChatTinyMaxPayload(t *testing.T) {
	_, addr, _ := startServerCtl(t)
	var o, e bytes.Buffer
	code := runWith(refusingLAN{}, []string{"chat", "--server", addr, "--as", "a-rather-long-name", "--max-payload", "16"}, strings.NewReader("short\n"), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, e.String())
	}
}

// TestHelloLookingLineRefused: plain send refuses a first line that a
// lanmsg server would take for a hello, with exit 2 and a hint.
func TestHelloLookingLineRefused(t *testing.T) {
	_, addr, out := startServerCtl(t)
	code, _, errOut := runFake(t, refusingLAN{}, "!HELLO {\"v\":1}\nsecond\n", "send", "--server", addr)
	if code != exitUsage || !strings.Contains(errOut, "line 1 is a valid !HELLO") || !strings.Contains(errOut, "--receipts") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if strings.Contains(out.String(), "second") {
		t.Errorf("the line after the refused one was sent:\n%s", out.String())
	}
}
