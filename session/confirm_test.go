package session

// Tests that a session is confirmed only when everything in it was written,
// and never otherwise.

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// TestProcessDeathDoesNotConfirm: a session stuck on a blocked output, whose
// socket is then closed as the kernel closes it when the process dies, must
// look like a reset to the client, never like the orderly close that
// confirms delivery.
func TestProcessDeathDoesNotConfirm(t *testing.T) {
	t.Parallel()
	out := newBlockingWriter()
	ts := startServer(t, Config{}, Text, out)
	defer out.release() // before the server's cleanup
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{ConfirmTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("never written")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- cl.Close() }()
	<-out.entered // the session is stuck writing the message out

	// What process exit does to the session's socket: a plain close(2).
	ts.srv.mu.Lock()
	for _, c := range ts.srv.sessions {
		_ = c.nc.Close()
	}
	ts.srv.mu.Unlock()

	if err := <-closed; !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Close() = %v, want ErrNotConfirmed: the message was never written", err)
	}
}

// TestShutdownTimeoutResets: when Shutdown gives up on sessions stuck on the
// output, their clients are reset at once rather than left waiting (and
// confirmed by the close at process exit).
func TestShutdownTimeoutResets(t *testing.T) {
	t.Parallel()
	out := newBlockingWriter()
	ts := startServer(t, Config{}, Text, out)
	defer out.release() // before the server's cleanup
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, append(frame("stuck"), frame(transport.Disconnect)...))
	<-out.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline", err)
	}
	expectReset(t, c, 2*time.Second)
}

// TestHelloLookingMessageRefused: a plain session's first message that a
// lanmsg server would take for a hello is refused, not silently swallowed.
func TestHelloLookingMessageRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte(`!HELLO {"v":1}`)); !errors.Is(err, ErrHelloMessage) {
		t.Fatalf("Send(hello) = %v, want ErrHelloMessage", err)
	}
	for _, m := range []string{"first", `!HELLO {"v":1}`} { // later, it is only text
		if err := cl.Send([]byte(m)); err != nil {
			t.Fatalf("Send(%q) = %v", m, err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ts.out.String(); !strings.Contains(got, " : first\n") || !strings.Contains(got, ` : !HELLO {"v":1}`+"\n") {
		t.Errorf("output %q", got)
	}
}

func fakeExtServer(t *testing.T, act func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := transport.NewReader(c, 0)
		if _, err := r.ReadFrame(); err != nil { // the hello
			return
		}
		_, _ = c.Write(frame(`{"t":"welcome"}`))
		act(c)
	}()
	return ln.Addr().String()
}

// TestExtCloseNeedsReceipts: in an extended session, an orderly close is a
// confirmation only after !DISCONNECT and with every message acknowledged.
func TestExtCloseNeedsReceipts(t *testing.T) {
	t.Parallel()
	t.Run("closed before !DISCONNECT", func(t *testing.T) {
		addr := fakeExtServer(t, func(c net.Conn) {})
		cl, err := Dial(context.Background(), addr, ClientConfig{Hello: &Hello{}})
		if err != nil {
			t.Fatal(err)
		}
		<-cl.Done() // the server has closed
		if err := cl.Send([]byte("lost")); err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(); !errors.Is(err, ErrNotConfirmed) {
			t.Fatalf("Close() = %v, want ErrNotConfirmed", err)
		}
	})
	t.Run("closed without receipts", func(t *testing.T) {
		addr := fakeExtServer(t, func(c net.Conn) {
			r := transport.NewReader(c, 0)
			for {
				p, err := r.ReadFrame()
				if err != nil || string(p) == transport.Disconnect {
					return // close, having acknowledged nothing
				}
			}
		})
		cl, err := Dial(context.Background(), addr, ClientConfig{Hello: &Hello{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Send([]byte("unacknowledged")); err != nil {
			t.Fatal(err)
		}
		err = cl.Close()
		if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), "confirmed 0 of 1") {
			t.Fatalf("Close() = %v, want ErrNotConfirmed naming 0 of 1", err)
		}
	})
}
