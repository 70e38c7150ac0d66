package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// TestDeliverCancel: Deliver, waiting on an input that stays open, stops
// when ctx ends: it aborts the connection and returns ctx's error.
func TestDeliverCancel(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(t.Context(), ts.addr, ClientConfig{MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	defer r.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := NewLines(r, 1<<20)
	defer src.Stop()
	done := make(chan error, 1)
	go func() { _, err := cl.Deliver(ctx, src, DeliverOptions{}); done <- err }()
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	sessiontest.WaitFor(t, 5*time.Second, "the first line to arrive", func() bool { return strings.Contains(ts.out.String(), " : one\n") })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Deliver returned %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Deliver did not return within 2 s of the context's end")
	}
}

// TestDeliverCancelWhileConfirming: ctx's end also ends a send that waits
// on a server that never confirms, at once rather than after the confirm
// timeout.
func TestDeliverCancelWhileConfirming(t *testing.T) {
	gotDisconnect := make(chan struct{})
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) { // reads everything, never closes
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
	cl, err := Dial(t.Context(), addr, ClientConfig{ConfirmTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := cl.Deliver(ctx, Args([]string{"waiting"}), DeliverOptions{}); done <- err }()
	<-waiting // Deliver is now waiting for the confirmation
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Deliver returned nil: an unconfirmed send passed for delivered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver still waiting 5s after cancel")
	}
}

// TestDeliverStopsAtTooLong: a line over the limit stops the input; the
// lines before it are delivered and confirmed, and the error names it.
func TestDeliverStopsAtTooLong(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(t.Context(), ts.addr, ClientConfig{MaxPayload: 8})
	if err != nil {
		t.Fatal(err)
	}
	src := NewLines(strings.NewReader("one\ntwo\nthree is long\nfour\n"), 8)
	defer src.Stop()
	rep, err := cl.Deliver(t.Context(), src, DeliverOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || ie.N != 3 || ie.Max != 8 || !errors.Is(err, ErrTooLong) {
		t.Fatalf("Deliver = %v, want an InputError for message 3 over 8 bytes", err)
	}
	if rep.Sent != 2 {
		t.Errorf("sent %d, want 2", rep.Sent)
	}
	if got := ts.out.String(); !strings.Contains(got, " : two\n") || strings.Contains(got, "four") {
		t.Errorf("server output:\n%s", got)
	}
}

// TestDeliverChatOptions: in a chat, Line filters what is sent and names it
// by its place in the input, TooLong reports a line over the limit and the
// input goes on, and io.EOF from Line leaves with everything confirmed.
func TestDeliverChatOptions(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(t.Context(), ts.addr, ClientConfig{MaxPayload: 8, Hello: &Hello{Name: "a", Chat: true}})
	if err != nil {
		t.Fatal(err)
	}
	src := NewLines(strings.NewReader("one\n\nfar too long\ntwo\n/quit\nnever\n"), 8)
	defer src.Stop()
	var skipped, tooLong []int
	rep, err := cl.Deliver(t.Context(), src, DeliverOptions{
		Chat: true,
		Line: func(n int, msg []byte) ([]byte, bool, error) {
			switch string(msg) {
			case "":
				skipped = append(skipped, n)
				return nil, false, nil
			case "/quit":
				return nil, false, io.EOF
			}
			return msg, true, nil
		},
		TooLong: func(n int) { tooLong = append(tooLong, n) },
	})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if rep.Sent != 2 || rep.Acked != 2 || !rep.Extended {
		t.Errorf("report %+v, want 2 sent, 2 confirmed, extended", rep)
	}
	if len(skipped) != 1 || skipped[0] != 2 || len(tooLong) != 1 || tooLong[0] != 3 {
		t.Errorf("skipped %v, too long %v; want [2], [3]", skipped, tooLong)
	}
	if got := ts.out.String(); !strings.Contains(got, " : two\n") || strings.Contains(got, "never") {
		t.Errorf("server output:\n%s", got)
	}
}

// TestDeliverChatServerLeft: in a chat, the server ending the session ends
// the wait for input with a ServerLeftError.
func TestDeliverChatServerLeft(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	cl, err := Dial(t.Context(), ts.addr, ClientConfig{Hello: &Hello{Name: "a", Chat: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	defer w.Close()
	src := NewLines(r, 64)
	defer src.Stop()
	done := make(chan error, 1)
	go func() { _, err := cl.Deliver(t.Context(), src, DeliverOptions{Chat: true}); done <- err }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var left *ServerLeftError
		if !errors.As(err, &left) {
			t.Errorf("Deliver = %v, want a ServerLeftError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver still waiting for input 5 s after the server left")
	}
}
