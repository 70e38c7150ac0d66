package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// fakeServer accepts one connection on 127.0.0.1:0 and hands it to handle in
// a goroutine. The test waits for handle to return when it ends; stop is
// closed then, for handlers that hold the connection open.
func fakeServer(t *testing.T, handle func(c *net.TCPConn, stop <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c.(*net.TCPConn), stop)
	}()
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// readUntilDisconnect reads frames until !DISCONNECT and returns the payloads
// before it.
func readUntilDisconnect(c io.Reader) ([]string, error) {
	r := transport.NewReader(c, 0)
	var got []string
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return got, err
		}
		if string(p) == transport.Disconnect {
			return got, nil
		}
		got = append(got, string(p))
	}
}

func TestClientCloseConfirmed(t *testing.T) {
	t.Parallel()
	type result struct {
		frames []string
		raw    []byte
		err    error
	}
	res := make(chan result, 1)
	addr := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {
		var raw bytes.Buffer
		frames, err := readUntilDisconnect(io.TeeReader(c, &raw))
		res <- result{frames, raw.Bytes(), err}
		// Returning closes the connection: the confirmation.
	})
	cl, err := Dial(context.Background(), addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if cl.RemoteAddr().String() != addr {
		t.Errorf("RemoteAddr = %v, want %s", cl.RemoteAddr(), addr)
	}
	msgs := []string{"Hello World!", "", "two\nlines", "ünï ✓"}
	for _, m := range msgs {
		if err := cl.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if strings.Join(r.frames, "|") != strings.Join(msgs, "|") {
		t.Errorf("server got %q, want %q", r.frames, msgs)
	}
	// The exact bytes of the tutorial's protocol.
	var want []byte
	for _, m := range append(msgs, transport.Disconnect) {
		want = append(want, fmt.Sprintf("%-64d", len(m))...)
		want = append(want, m...)
	}
	if !bytes.Equal(r.raw, want) {
		t.Errorf("wire bytes\n got %q\nwant %q", r.raw, want)
	}
	for name, err := range map[string]error{"Send": cl.Send([]byte("x")), "Flush": cl.Flush(), "Close": cl.Close()} {
		if !errors.Is(err, ErrClientClosed) {
			t.Errorf("%s after Close = %v, want ErrClientClosed", name, err)
		}
	}
}

func TestClientNotConfirmedTimeout(t *testing.T) {
	t.Parallel()
	read := make(chan error, 1)
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) {
		_, err := readUntilDisconnect(c)
		read <- err
		<-stop // never close
	})
	const ct = 300 * time.Millisecond
	cl, err := Dial(context.Background(), addr, ClientConfig{ConfirmTimeout: ct})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = cl.Close()
	d := time.Since(start)
	if !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Close = %v, want ErrNotConfirmed", err)
	}
	checkWithin(t, "Close gave up", d, ct)
	if err := <-read; err != nil {
		t.Errorf("server read: %v", err)
	}
}

func TestClientServerResets(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {
		if _, err := readUntilDisconnect(c); err != nil {
			return
		}
		_ = c.SetLinger(0)
		c.Close()
	})
	cl, err := Dial(context.Background(), addr, ClientConfig{ConfirmTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	err = cl.Close()
	if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("Close = %v, want ErrNotConfirmed mentioning the reset", err)
	}
}

// TestClientServerNeverReads: a server that accepts and never reads must not
// hang the client: the write timeout ends it.
func TestClientServerNeverReads(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) { <-stop })
	const wt = 300 * time.Millisecond
	cl, err := Dial(context.Background(), addr, ClientConfig{WriteTimeout: wt, ConfirmTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 64<<10)
	start := time.Now()
	var sent int
	for sent = 0; sent < 50<<20; sent += len(msg) {
		if err = cl.Send(msg); err != nil {
			break
		}
	}
	if err == nil {
		err = cl.Flush()
	}
	if err == nil {
		err = cl.Close()
	}
	d := time.Since(start)
	if !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("after %d bytes: %v, want ErrNotConfirmed", sent, err)
	}
	if !strings.Contains(err.Error(), "stopped reading") {
		t.Errorf("error %q does not say the server stopped reading", err)
	}
	if d > 20*wt {
		t.Errorf("client gave up after %v, want about the write timeout %v", d, wt)
	}
	t.Logf("gave up after %d bytes, %v: %v", sent, d, err)
	// The client is unusable now, and says so.
	if err := cl.Send([]byte("x")); err == nil {
		if err = cl.Flush(); !errors.Is(err, ErrNotConfirmed) {
			t.Errorf("Flush after the failure = %v, want ErrNotConfirmed", err)
		}
	}
	cl.Abort()
}

func TestClientDialRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl, err := Dial(context.Background(), addr, ClientConfig{DialTimeout: 2 * time.Second})
	if err == nil {
		cl.Abort()
		t.Fatal("Dial to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial = %v, want ECONNREFUSED", err)
	}
}

func TestClientSendTooLarge(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	cl, peer := dialClient(t, ts.addr, ClientConfig{MaxPayload: 10})
	if cl.MaxPayload() != 10 {
		t.Errorf("MaxPayload() = %d", cl.MaxPayload())
	}
	err := cl.Send([]byte("eleven byte"))
	if !errors.Is(err, transport.ErrFrameTooLarge) {
		t.Fatalf("Send of 11 bytes = %v, want ErrFrameTooLarge", err)
	}
	if errors.Is(err, ErrNotConfirmed) {
		t.Errorf("a refused Send is not a delivery failure: %v", err)
	}
	if cl.Sent() != 0 {
		t.Errorf("Sent() = %d after a refused Send", cl.Sent())
	}
	// The client is still usable, and nothing of the refused message went
	// out.
	if err := cl.Send([]byte("ten bytes!")); err != nil {
		t.Fatalf("Send of 10 bytes: %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := ts.out.String(), textLine(peer, "ten bytes!")+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestClientRefusedByServerLimit: a session the server ends over its payload
// limit is not confirmed.
func TestClientRefusedByServerLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxPayload: 100}, Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send(bytes.Repeat([]byte("y"), 200)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Close = %v, want ErrNotConfirmed", err)
	}
	if got := ts.out.String(); got != "" {
		t.Errorf("output %q, want none", got)
	}
}

// TestClientShutdownNotConfirmed: a session that a shutdown ends is not
// confirmed, even though its messages were written to the output.
func TestClientShutdownNotConfirmed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	cl, peer := dialClient(t, ts.addr, ClientConfig{})
	if err := cl.Send([]byte("before shutdown")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	ts.waitMessages(t, peer, 1)
	if err := ts.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Close = %v, want ErrNotConfirmed", err)
	}
}

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestClientOverPipe runs NewClient and the server over net.Pipe.
func TestClientOverPipe(t *testing.T) {
	t.Parallel()
	out := &sessiontest.SyncBuffer{}
	log := zerolog.New(zerolog.NewTestWriter(t))
	srv, err := NewServer(Config{}, out, Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	ln := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})

	cEnd, sEnd := net.Pipe()
	ln.conns <- sEnd
	cl := NewClient(cEnd, ClientConfig{WriteTimeout: 5 * time.Second, ConfirmTimeout: 5 * time.Second})
	var want strings.Builder
	for i := range 100 {
		m := fmt.Sprintf("pipe message %d", i)
		if err := cl.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
		want.WriteString(textLine("pipe", m) + "\n")
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := out.String(); got != want.String() {
		t.Errorf("output\n got %q\nwant %q", got, want.String())
	}
}

// TestClientLimitBelowDisconnect: a client payload limit shorter than
// "!DISCONNECT" still lets Close end the session.
func TestClientLimitBelowDisconnect(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	cl, peer := dialClient(t, ts.addr, ClientConfig{MaxPayload: 3})
	if err := cl.Send([]byte("four")); !errors.Is(err, transport.ErrFrameTooLarge) {
		t.Fatalf("Send of 4 bytes = %v, want ErrFrameTooLarge", err)
	}
	if err := cl.Send([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := ts.out.String(), textLine(peer, "abc")+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
