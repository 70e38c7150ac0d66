package session

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

// TestControlFrameKeepsFlushing: a message followed by a control frame in
// the same read is written out (and confirmed) without waiting for more
// input, which in a chat may not come for hours.
func TestControlFrameKeepsFlushing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, frame(`!HELLO {"v":1,"name":"paster","chat":true}`))
	ts.log.waitCount(t, 5*time.Second, 1, "extended session")
	mustWrite(t, c, append(frame("hello there"), frame("!WHO")...))
	waitFor(t, 5*time.Second, "the message before !WHO to be written out", func() bool {
		return strings.Contains(ts.out.String(), " : hello there\n")
	})
}

// TestBigEventKeepsListeners: one legitimate message whose event is larger
// than a listener's whole send queue (JSON escaping grows control bytes six
// times) reaches the listener instead of getting it dropped.
func TestBigEventKeepsListeners(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{SendQueue: 64 << 10}, Text, nil)
	recL := newEventRec()
	_, _ = dialExt(t, ts.addr, Hello{Name: "listener", Chat: true}, recL, ClientConfig{})
	talker, _ := dialExt(t, ts.addr, Hello{Name: "talker", Chat: true}, nil, ClientConfig{})
	recL.wait(t, 5*time.Second, "the talker's join", hasEvent(EventJoin, "talker"))

	for _, text := range []string{strings.Repeat("<&>", 30000), strings.Repeat("\x01", 50000)} {
		if err := talker.Send([]byte(text)); err != nil {
			t.Fatal(err)
		}
		if err := talker.Flush(); err != nil {
			t.Fatal(err)
		}
		recL.wait(t, 5*time.Second, "the big message", func(evs []Event) bool {
			for _, e := range evs {
				if e.Type == EventMessage && e.Text == text {
					return true
				}
			}
			return false
		})
	}
	if n := ts.log.count("send queue full"); n != 0 {
		t.Errorf("%d participants dropped for one big message", n)
	}
}

// TestChatNameCapped: a chat name is cut to maxNameLen bytes, on a rune
// boundary.
func TestChatNameCapped(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	long := strings.Repeat("é", 100) // 200 bytes
	cl, _ := dialExt(t, ts.addr, Hello{Name: long, Chat: true}, nil, ClientConfig{})
	if got := cl.Welcome().Name; got != strings.Repeat("é", maxNameLen/2) {
		t.Errorf("name %q (%d bytes), want %d bytes of it", got, len(got), maxNameLen)
	}
}

// fakeExtServer welcomes an extended session and then does what act says.
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
