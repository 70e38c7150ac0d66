package main

// How send and chat stop reading their input: they answer Ctrl-C and
// SIGTERM while they wait on stdin (the line source selects on the
// context), and chat reports a line it cannot send as send does.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

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
	var stderr sessiontest.SyncBuffer
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
	sessiontest.WaitFor(t, 10*time.Second, "the first line to arrive", func() bool { return strings.Contains(out.String(), " : one\n") })
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
	var o, e sessiontest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(refusingLAN{}, []string{"--log-format", "json", "chat", "--server", addr, "--as", "alice", "--max-payload", "64"}, tty.slave, &o, &e)
	}()
	sessiontest.WaitFor(t, 10*time.Second, "alice to join", func() bool { return strings.Contains(o.String(), "* here: alice\n") })
	tty.typeIn("one\n" + strings.Repeat("x", 100) + "\nthree\n")
	sessiontest.WaitFor(t, 10*time.Second, "the line after the long one", func() bool { return strings.Contains(out.String(), " : three\n") })
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
func chatRun(t *testing.T, ctx context.Context, addr string, in io.Reader, out *sessiontest.SyncBuffer) error {
	t.Helper()
	c := &chatCmd{As: "alice"}
	c.Server, c.BrowseTimeout = addr, time.Second
	c.MaxPayload, c.ConnectTimeout, c.ConfirmTimeout = 1<<20, 5*time.Second, 5*time.Second
	log := zerolog.New(zerolog.NewTestWriter(t))
	return c.Run(ctx, &log, streams{in, out, io.Discard}, refusingLAN{}, configDir(t.TempDir()))
}

// TestChatCtrlC: Ctrl-C, while chat waits for input, leaves normally.
func TestChatCtrlC(t *testing.T) {
	_, addr, out := startServerCtl(t)
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- chatRun(t, ctx, addr, r, &sessiontest.SyncBuffer{}) }()
	if _, err := w.Write([]byte("before ctrl-c\n")); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitFor(t, 10*time.Second, "the line to arrive", func() bool { return strings.Contains(out.String(), " : before ctrl-c\n") })
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
	out := &sessiontest.SyncBuffer{}
	go func() { done <- chatRun(t, t.Context(), addr, r, out) }()
	// chat tries TLS first (session 1, which this plain server refuses),
	// then joins in clear (session 2), and prints who is here once the
	// server has welcomed it. Before that, a server that goes away has not
	// let it join at all, which is another error.
	sessiontest.WaitFor(t, 10*time.Second, "chat to join after its TLS attempt", func() bool { return strings.Contains(out.String(), "alice") })
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
