package session

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

type testServer struct {
	srv  *Server
	addr string
	out  *sessiontest.SyncBuffer
	log  *sessiontest.Log
	done chan struct{}
	err  error // Serve's result, valid after done is closed
}

// startServer starts a server on 127.0.0.1:0 writing to out (a fresh
// sessiontest.SyncBuffer if nil), and shuts it down when the test ends.
func startServer(t *testing.T, cfg Config, format Format, out io.Writer) *testServer {
	t.Helper()
	ts := &testServer{log: sessiontest.NewLog(), done: make(chan struct{})}
	if out == nil {
		ts.out = &sessiontest.SyncBuffer{}
		out = ts.out
	}
	logger := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), ts.log)).With().Timestamp().Logger()
	srv, err := NewServer(cfg, out, format, &logger)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.srv, ts.addr = srv, ln.Addr().String()
	go func() {
		ts.err = srv.Serve(ln)
		close(ts.done)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown at cleanup: %v", err)
		}
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return ts
}

// waitSessions waits until the server has exactly n live sessions.
func (ts *testServer) waitSessions(t *testing.T, n int) {
	t.Helper()
	sessiontest.WaitFor(t, 5*time.Second, "session count", func() bool { return len(ts.srv.Sessions()) == n })
}

// waitMessages waits until the session with the given peer has written n
// messages to the output.
func (ts *testServer) waitMessages(t *testing.T, peer string, n int64) {
	t.Helper()
	sessiontest.WaitFor(t, 5*time.Second, "messages of "+peer, func() bool {
		for _, s := range ts.srv.Sessions() {
			if s.Peer == peer {
				return s.Messages >= n
			}
		}
		return false
	})
}

func frame(s string) []byte { return transport.AppendFrame(nil, []byte(s)) }

func header(n int) []byte { return transport.AppendHeader(nil, n) }

func dialRaw(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func mustWrite(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	if _, err := c.Write(p); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readEnd reads until the server ends the connection (or timeout) and returns
// how long it took and the read error.
func readEnd(c net.Conn, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(timeout))
	var buf [256]byte
	for {
		n, err := c.Read(buf[:])
		if err != nil {
			return time.Since(start), err
		}
		if n > 0 {
			return time.Since(start), errors.New("server sent data: " + string(buf[:n]))
		}
	}
}

func expectReset(t *testing.T, c net.Conn, timeout time.Duration) time.Duration {
	t.Helper()
	d, err := readEnd(c, timeout)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after %v: got %v, want ECONNRESET", d, err)
	}
	return d
}

// expectResetWhileWriting is expectReset for a connection that another
// goroutine keeps writing to: the reset reaches whichever of the read and a
// write comes first, and the other then sees the end of the stream. writeErr
// yields the writer's error once it stops (nil if stopped otherwise).
func expectResetWhileWriting(t *testing.T, c net.Conn, timeout time.Duration, writeErr <-chan error) time.Duration {
	t.Helper()
	d, err := readEnd(c, timeout)
	if errors.Is(err, syscall.ECONNRESET) {
		return d
	}
	if werr := <-writeErr; !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("after %v: read %v, write %v; want a reset", d, err, werr)
	}
	return d
}

func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	d, err := readEnd(c, 5*time.Second)
	if err != io.EOF {
		t.Fatalf("read after %v: got %v, want io.EOF (orderly close)", d, err)
	}
}

// textLine is the text-format line the server writes for msg from peer.
func textLine(peer, msg string) string { return "[" + peer + "] : " + msg }

// scanLines splits s into lines.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
