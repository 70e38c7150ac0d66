package main

// Tests for review findings: send and chat answer Ctrl-C and SIGTERM while
// they wait on stdin (the line source selects on the context), chat reports
// a line it cannot send as send does, and names and TXT values from the
// network are escaped before they reach a terminal.

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/lanmsg/lanmsg/discovery"
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

// TestReviewSendSIGTERM: `(echo one; sleep 30) | lanmsg send --server ...`
// ends promptly on SIGTERM, interrupted (130).
func TestReviewSendSIGTERM(t *testing.T) {
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

// TestReviewChatTooLongPipe: from a pipe, a line over --max-payload stops
// chat as it stops send: it leaves, confirming what was sent, and exits 2
// naming the line; stdout has only chat events.
func TestReviewChatTooLongPipe(t *testing.T) {
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

// TestReviewChatReadError: an input that fails stops chat as it stops send.
func TestReviewChatReadError(t *testing.T) {
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

// TestReviewChatTooLongTerminal: typed on a terminal, a line too long gets a
// note on stderr, and chat goes on.
func TestReviewChatTooLongTerminal(t *testing.T) {
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
func chatRun(t *testing.T, ctx context.Context, addr string, in io.Reader) (*sessiontest.SyncBuffer, error) {
	t.Helper()
	c := &chatCmd{As: "alice"}
	c.Server, c.BrowseTimeout = addr, time.Second
	c.MaxPayload, c.ConnectTimeout, c.ConfirmTimeout = 1<<20, 5*time.Second, 5*time.Second
	log := zerolog.New(zerolog.NewTestWriter(t))
	out := &sessiontest.SyncBuffer{}
	return out, c.Run(ctx, &log, streams{in, out, io.Discard}, refusingLAN{}, configDir(t.TempDir()))
}

// TestReviewChatCtrlC: Ctrl-C, while chat waits for input, leaves normally.
func TestReviewChatCtrlC(t *testing.T) {
	_, addr, out := startServerCtl(t)
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := chatRun(t, ctx, addr, r); done <- err }()
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

// TestReviewChatServerGone: the server stopping while chat waits for input
// ends chat with exit 4.
func TestReviewChatServerGone(t *testing.T) {
	srv, addr, _ := startServerCtl(t)
	r, w := io.Pipe()
	defer r.Close()
	defer w.Close()
	done := make(chan error, 1)
	go func() { _, err := chatRun(t, t.Context(), addr, r); done <- err }()
	// chat tries TLS first (session 1, which this plain server refuses),
	// then joins in clear (session 2).
	sessiontest.WaitFor(t, 10*time.Second, "chat to join after its TLS attempt", func() bool { ss := srv.Sessions(); return len(ss) == 1 && ss[0].ID >= 2 })
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

// hostile is a service whose name and TXT would drive a terminal if printed
// raw: an OSC 52 clipboard write and a screen clear.
func hostile(t *testing.T, addr string) discovery.Service {
	s := svc(t, "evil\x1b]52;c;AAAA\x07", addr)
	s.Host = "h\x1b[2J.local."
	s.TXT["x\x1b[2J"] = "\x1b]52;c;AAAA\x07\x1b[2J"
	return s
}

func TestReviewBrowseEscapes(t *testing.T) {
	s := hostile(t, "198.18.0.11:5050")
	l := &fakeLAN{services: []discovery.Service{s}}
	code, out, errOut := runFake(t, l, "", "browse", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
		t.Errorf("browse printed control bytes from the network: %q", out)
	}
	if !strings.HasPrefix(out, `evil\x1b]52;c;AAAA\x07 `) || !strings.Contains(out, `x\x1b[2J=\x1b]52;c;AAAA\x07\x1b[2J`) || !strings.Contains(out, `h\x1b[2J.local.`) {
		t.Errorf("browse output %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("one server must be one line: %q", out)
	}

	// --json keeps the values as they are (JSON escapes them).
	code, out, errOut = runFake(t, l, "", "browse", "--json", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("JSON output holds a raw ESC: %q", out)
	}
	var got serviceJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != s.Instance || got.Host != s.Host || got.TXT["x\x1b[2J"] != s.TXT["x\x1b[2J"] {
		t.Errorf("JSON changed the values: %+v", got)
	}
}

func TestReviewPickEscapes(t *testing.T) {
	found := []discovery.Service{hostile(t, "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}
	tty := &fakeTTY{Reader: strings.NewReader("nope\x1b[2J\n1\n")}
	got, err := choose(found, func() (io.ReadWriteCloser, error) { return tty, nil }, time.Second, nil)
	if err != nil || got.name != found[0].Instance {
		t.Fatalf("got %q, %v", got.name, err)
	}
	screen := tty.out.String()
	if strings.ContainsRune(screen, 0x1b) || strings.ContainsRune(screen, 0x07) {
		t.Errorf("the picker showed control bytes: %q", screen)
	}
	if !strings.Contains(screen, `1) evil\x1b]52;c;AAAA\x07  (198.18.0.11 port 5050)`) {
		t.Errorf("the picker shows:\n%s", screen)
	}

	// Without a terminal, the error lists the names, quoted.
	_, err = choose(found, func() (io.ReadWriteCloser, error) { return nil, errors.New("no tty") }, time.Second, nil)
	var b bytes.Buffer
	report(&b, err)
	if strings.ContainsRune(b.String(), 0x1b) {
		t.Errorf("the error shows control bytes: %q", b.String())
	}
}

// TestReviewErrorsEscapeNames: errors that name servers found on the LAN do
// not print their names raw.
func TestReviewErrorsEscapeNames(t *testing.T) {
	plain := plainServer(t)
	withHello := hostile(t, plain)
	withHello.TXT["hello"] = "1"
	for _, tc := range []struct {
		name string
		l    lan
		args []string
	}{
		{"send --to, not found", &fakeLAN{services: []discovery.Service{hostile(t, "198.18.0.11:5050")}}, []string{"send", "--to", "kitchen", "--browse-timeout", "50ms", "hi"}},
		{"chat, no hello", &fakeLAN{services: []discovery.Service{hostile(t, plain)}}, []string{"chat", "--browse-timeout", "50ms"}},
		{"chat, hello but no extension", &fakeLAN{services: []discovery.Service{withHello}}, []string{"chat", "--browse-timeout", "50ms", "--confirm-timeout", "300ms"}},
		{"send, unreachable", &fakeLAN{services: []discovery.Service{hostile(t, closedPort(t))}}, []string{"send", "--browse-timeout", "50ms", "hi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runFake(t, tc.l, "", tc.args...)
			if code == 0 {
				t.Fatalf("exit 0:\n%s", errOut)
			}
			if strings.ContainsRune(out+errOut, 0x1b) {
				t.Errorf("control bytes from the network in the output:\nstdout %q\nstderr %q", out, errOut)
			}
		})
	}
}

// TestReviewChatTinyMaxPayload: the hello is not a message, so a payload
// limit below its length does not stop chat from joining.
func TestReviewChatTinyMaxPayload(t *testing.T) {
	_, addr, _ := startServerCtl(t)
	var o, e bytes.Buffer
	code := runWith(refusingLAN{}, []string{"chat", "--server", addr, "--as", "a-rather-long-name", "--max-payload", "16"}, strings.NewReader("short\n"), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, e.String())
	}
}

// TestReviewHelloLookingLineRefused: plain send refuses a first line that a
// lanmsg server would take for a hello, with exit 2 and a hint.
func TestReviewHelloLookingLineRefused(t *testing.T) {
	_, addr, out := startServerCtl(t)
	code, _, errOut := runFake(t, refusingLAN{}, "!HELLO {\"v\":1}\nsecond\n", "send", "--server", addr)
	if code != exitUsage || !strings.Contains(errOut, "line 1 is a valid !HELLO") || !strings.Contains(errOut, "--receipts") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if strings.Contains(out.String(), "second") {
		t.Errorf("the line after the refused one was sent:\n%s", out.String())
	}
}
