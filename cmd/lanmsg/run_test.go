package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// startServer runs an in-process lanmsg server on 127.0.0.1:0.
func startServer(t *testing.T, format session.Format) (addr string, out *sessiontest.SyncBuffer) {
	t.Helper()
	_, addr, out = startServerWith(t, format)
	return addr, out
}

// startServerWith is startServer with a handle on the server.
func startServerWith(t *testing.T, format session.Format) (*session.Server, string, *sessiontest.SyncBuffer) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	out := &sessiontest.SyncBuffer{}
	srv, addr := serveSessions(t, session.Config{}, out, format, &log)
	return srv, addr, out
}

// serveSessions runs a session.Server with cfg on 127.0.0.1:0 until the
// test ends, and returns it with its address.
func serveSessions(t *testing.T, cfg session.Config, out io.Writer, format session.Format, log *zerolog.Logger) (*session.Server, string) {
	t.Helper()
	srv, err := session.NewServer(cfg, out, format, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()); <-done })
	return srv, ln.Addr().String()
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakeServer listens on 127.0.0.1:0 and handles each connection with
// handle, in its own goroutine, until the test ends.
func fakeServer(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// resettingServer accepts connections, reads a little and resets them.
func resettingServer(t *testing.T) string {
	return fakeServer(t, func(c net.Conn) {
		var b [1]byte
		_, _ = c.Read(b[:])
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
}

func runLanmsg(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = runWith(testLAN(), append([]string{"--log-format", "json"}, args...), strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestExitCodes(t *testing.T) {
	taken, _ := startServer(t, session.Text)
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
	}{
		{"help", []string{"--help"}, "", 0, ""},
		{"version", []string{"--version"}, "", 0, ""},
		{"no command: the usage", nil, "", 0, ""},
		{"version command", []string{"version"}, "", 0, ""},
		{"unknown command", []string{"frobnicate"}, "", exitUsage, "unexpected argument frobnicate"},
		{"unknown flag", []string{"send", "--nope"}, "", exitUsage, "unknown flag --nope"},
		{"bad server address", []string{"send", "--server", "::1::", "hi"}, "", exitUsage, "lanmsg: hint: give HOST:PORT"},
		{"empty host", []string{"send", "--server", ":5050", "hi"}, "", exitUsage, "has no host"},
		{"bad size", []string{"serve", "--max-payload", "0"}, "", exitUsage, "is not a size"},
		{"max payload below !DISCONNECT", []string{"serve", "--no-advertise", "--max-payload", "8"}, "", exitUsage, "out of range"},
		{"max sessions zero", []string{"serve", "--no-advertise", "--max-sessions", "0"}, "", exitUsage, "--max-sessions must be at least 1"},
		{"port taken", []string{"serve", "--no-advertise", "--listen", taken}, "", exitFailure, "address already in use"},
		{"name too long", []string{"serve", "--no-advertise", "--name", strings.Repeat("é", 32)}, "", exitUsage, "is 64 bytes long; a name on the LAN has at most 63 (one DNS label)\nlanmsg: hint: choose a shorter name"},
		{"no such interface: the hint lists names plainly", []string{"browse", "--interface", "nosuch0"}, "", exitUsage, "\nlanmsg: hint: this machine has: lo"},
		{"browse timeout zero", []string{"browse", "--timeout", "0"}, "", exitUsage, "--timeout must be positive, got 0s\nlanmsg: hint: give a duration with its unit, such as --timeout 1.5s"},
		{"no such interface", []string{"browse", "--interface", "nosuch0"}, "", exitUsage, `--interface "nosuch0": no such network interface`},
		{"refused", []string{"send", "--server", closedPort(t), "hi"}, "", exitUnreachable, "connection refused"},
		{"reset", []string{"send", "--server", resettingServer(t), "hi"}, "", exitUnconfirmed, "not confirmed"},
		{"receipts from a plain server", []string{"send", "--receipts", "--confirm-timeout", "200ms", "--server", plainServer(t), "hi"}, "", exitUnconfirmed,
			"does not support receipts or chat: it did not answer the !HELLO that asks for them within 200ms"},
		{"too long", []string{"send", "--server", taken, "--max-payload", "16"}, "ok\n" + strings.Repeat("x", 17) + "\n", exitUsage, "line 2 is longer than the 16 limit"},
		{"too long argument", []string{"send", "--server", taken, "--max-payload", "16", "ok", strings.Repeat("x", 17)}, "", exitUsage, "message 2 is longer than the 16 limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runLanmsg(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.stderr, stderr)
			}
			if tc.code != 0 && !strings.HasPrefix(stderr, "lanmsg: error: ") && !strings.Contains(stderr, "\nlanmsg: error: ") {
				t.Errorf("a failure must say 'lanmsg: error: ...':\n%s", stderr)
			}
		})
	}
}

// TestSendNewlines: a message with newlines (possible as an argument) stays
// one line in both output formats.
func TestSendNewlines(t *testing.T) {
	for _, tc := range []struct {
		format session.Format
		want   string
	}{
		{session.Text, "] : two\\nlines\\r\\n and a \\\\ backslash\n"},
		{session.JSON, `"text":"two\nlines\r\n and a \\ backslash"}` + "\n"},
	} {
		t.Run(tc.format.String(), func(t *testing.T) {
			addr, out := startServer(t, tc.format)
			if code, _, stderr := runLanmsg(t, "", "send", "--server", addr, "two\nlines\r\n and a \\ backslash"); code != 0 {
				t.Fatalf("send failed (%d):\n%s", code, stderr)
			}
			got := out.String()
			if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, tc.want) {
				t.Errorf("output %q, want one line ending %q", got, tc.want)
			}
		})
	}
}

// TestSendStreamsStdin: lines are sent as they are read, not after stdin
// ends: the server has the first line while stdin is still open.
func TestSendStreamsStdin(t *testing.T) {
	addr, out := startServer(t, session.Text)
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var o, e bytes.Buffer
		done <- runWith(testLAN(), []string{"send", "--server", addr}, r, &o, &e)
	}()
	if _, err := w.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitFor(t, 10*time.Second, "the first line to arrive while stdin is open", func() bool { return strings.Contains(out.String(), " : first\n") })
	if _, err := w.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if code := <-done; code != 0 {
		t.Fatalf("send exited %d", code)
	}
	if !strings.Contains(out.String(), " : second\n") {
		t.Errorf("second line missing:\n%s", out.String())
	}
}
