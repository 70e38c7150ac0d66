package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/transport"
)

// dialClient dials addr itself and wraps the connection with NewClient, so
// that the test knows the peer address the server will print.
func dialClient(t *testing.T, addr string, cfg ClientConfig) (*Client, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return NewClient(nc, cfg), nc.LocalAddr().String()
}

func TestRoundTripText(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	cl, peer := dialClient(t, ts.addr, ClientConfig{})

	msgs := []struct{ in, out string }{
		{"hello", "hello"},
		{"two\nlines", `two\nlines`},
		{`back\slash`, `back\\slash`},
		{"crlf\r\n", `crlf\r\n`},
		{"bell\x07 nul\x00 esc\x1b del\x7f", `bell\x07 nul\x00 esc\x1b del\x7f`},
		{"tab\there", "tab\there"},
		{"bad \xff\xfe utf8", "bad \uFFFD\uFFFD utf8"},
		{"héllo ✓ 😀", "héllo ✓ 😀"},
		{`"quoted"`, `"quoted"`},
		{"", ""},
	}
	var want []string
	for i := range 500 {
		m := msgs[i%len(msgs)]
		in := fmt.Sprintf("%03d %s", i, m.in)
		if err := cl.Send([]byte(in)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		want = append(want, textLine(peer, fmt.Sprintf("%03d %s", i, m.out)))
	}
	if cl.Sent() != 500 {
		t.Errorf("Sent() = %d, want 500", cl.Sent())
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close returned nil: the server has read and written every message.
	if got := ts.out.String(); got != strings.Join(want, "\n")+"\n" {
		t.Fatalf("output mismatch:\n got %q\nwant %q", got, strings.Join(want, "\n")+"\n")
	}
	ts.waitSessions(t, 0)
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"disconnect"`, `"messages":500`)
}

func TestRoundTripJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, JSON, nil)
	cl, peer := dialClient(t, ts.addr, ClientConfig{})
	before := time.Now()

	ins := []string{
		"plain",
		"multi\nline\r\nmessage",
		`with "double" and 'single' quotes and \backslashes\`,
		"non-ASCII: héllo wörld ✓ 日本語 😀",
		"controls \x00\x01\x1b\t",
		"",
		"<html>&amp;</html>",
	}
	for i := range 200 {
		if err := cl.Send([]byte(fmt.Sprintf("%d:%s", i, ins[i%len(ins)]))); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Send([]byte("bad \xff utf8 \xe2\x82")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after := time.Now()

	lines := scanLines(ts.out.String())
	if len(lines) != 201 {
		t.Fatalf("got %d lines, want 201", len(lines))
	}
	var session uint64
	for i, line := range lines {
		l := decodeJSONLine(t, []byte(line))
		want := fmt.Sprintf("%d:%s", i, ins[i%len(ins)])
		if i == 200 {
			want = "bad \uFFFD utf8 \uFFFD\uFFFD"
		}
		if *l.Text != want {
			t.Errorf("line %d: text %q, want %q", i, *l.Text, want)
		}
		if *l.Peer != peer {
			t.Errorf("line %d: peer %q, want %q", i, *l.Peer, peer)
		}
		if i == 0 {
			session = *l.Session
		} else if *l.Session != session {
			t.Errorf("line %d: session %d, want %d like line 0", i, *l.Session, session)
		}
		tm, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			t.Errorf("line %d: time %q: %v", i, l.Time, err)
		} else if tm.Before(before.Add(-time.Second)) || tm.After(after.Add(time.Second)) {
			t.Errorf("line %d: time %v is outside the test's run [%v, %v]", i, tm, before, after)
		}
	}
}

// TestConcurrentClients runs 100 clients of 200 messages each at once.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	const clients, perClient = 100, 200
	ts := startServer(t, Config{MaxSessionsPerHost: clients}, JSON, nil)

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", c, err)
				return
			}
			for m := range perClient {
				if err := cl.Send(fmt.Appendf(nil, "c%03d m%03d", c, m)); err != nil {
					errs <- fmt.Errorf("client %d send %d: %w", c, m, err)
					cl.Abort()
					return
				}
				if m%50 == 49 {
					if err := cl.Flush(); err != nil {
						errs <- fmt.Errorf("client %d flush: %w", c, err)
						cl.Abort()
						return
					}
				}
			}
			if err := cl.Close(); err != nil {
				errs <- fmt.Errorf("client %d close: %w", c, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	type state struct {
		next    int
		session uint64
		peer    string
	}
	seen := map[int]*state{}
	sessions := map[uint64]int{}
	lines := scanLines(ts.out.String())
	if len(lines) != clients*perClient {
		t.Errorf("got %d lines, want %d", len(lines), clients*perClient)
	}
	for _, line := range lines {
		l := decodeJSONLine(t, []byte(line))
		var c, m int
		if _, err := fmt.Sscanf(*l.Text, "c%03d m%03d", &c, &m); err != nil {
			t.Fatalf("unexpected message %q", *l.Text)
		}
		st := seen[c]
		if st == nil {
			st = &state{session: *l.Session, peer: *l.Peer}
			seen[c] = st
			if other, dup := sessions[st.session]; dup {
				t.Errorf("clients %d and %d share session id %d", other, c, st.session)
			}
			sessions[st.session] = c
		}
		if m != st.next {
			t.Fatalf("client %d: got message %d, want %d (out of order or lost)", c, m, st.next)
		}
		st.next++
		if *l.Session != st.session || *l.Peer != st.peer {
			t.Errorf("client %d: message %d has session %d peer %s, earlier ones %d %s", c, m, *l.Session, *l.Peer, st.session, st.peer)
		}
	}
	for c := range clients {
		if st := seen[c]; st == nil || st.next != perClient {
			t.Errorf("client %d: not all messages delivered", c)
		}
	}
	ts.waitSessions(t, 0)
	ts.log.Wait(t, 5*time.Second, clients, "session closed", `"reason":"disconnect"`)
}

// TestRawTutorialClient writes frames as the tutorial's client does: the
// header and the payload in separate send calls.
func TestRawTutorialClient(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	var want []string
	for _, m := range []string{"Hello World!", "Hello Everyone!", "Hello Tim!", "", "ünïcödé"} {
		mustWrite(t, c, header(len(m)))
		if m != "" {
			mustWrite(t, c, []byte(m))
		}
		want = append(want, textLine(peer, m))
	}
	mustWrite(t, c, header(len(transport.Disconnect)))
	mustWrite(t, c, []byte(transport.Disconnect))
	expectEOF(t, c)
	if got := ts.out.String(); got != strings.Join(want, "\n")+"\n" {
		t.Fatalf("output\n got %q\nwant %q", got, strings.Join(want, "\n")+"\n")
	}
}

// TestRawOneByteWrites splits every frame into 1-byte writes.
func TestRawOneByteWrites(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	if err := c.SetNoDelay(true); err != nil {
		t.Fatal(err)
	}
	peer := c.LocalAddr().String()
	var stream []byte
	msgs := []string{"first", "", "second message, a bit longer ✓", transport.Disconnect}
	for _, m := range msgs {
		stream = append(stream, frame(m)...)
	}
	for i := range stream {
		mustWrite(t, c, stream[i:i+1])
	}
	expectEOF(t, c)
	want := textLine(peer, "first") + "\n" + textLine(peer, "") + "\n" + textLine(peer, "second message, a bit longer ✓") + "\n"
	if got := ts.out.String(); got != want {
		t.Fatalf("output\n got %q\nwant %q", got, want)
	}
}

// TestRawEmptyPayload: a zero-length payload is an empty message, not the end
// of the session.
func TestRawEmptyPayload(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	mustWrite(t, c, header(0))
	ts.waitMessages(t, peer, 1)
	if got, want := ts.out.String(), textLine(peer, "")+"\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	mustWrite(t, c, append(frame(""), frame("after")...))
	ts.waitMessages(t, peer, 3)
	mustWrite(t, c, frame(transport.Disconnect))
	expectEOF(t, c)
	want := textLine(peer, "") + "\n" + textLine(peer, "") + "\n" + textLine(peer, "after") + "\n"
	if got := ts.out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// TestAbruptClientExit: clients that vanish end their sessions, their
// complete messages are delivered, and no goroutine is left behind. Not
// parallel: it counts goroutines.
func TestAbruptClientExit(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	// Let the accept loop settle into Accept before taking the baseline.
	ts.waitSessions(t, 0)
	baseline := runtime.NumGoroutine()

	// A Client that aborts without !DISCONNECT.
	cl, peerA := dialClient(t, ts.addr, ClientConfig{})
	for _, m := range []string{"a1", "a2", "a3"} {
		if err := cl.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("late")); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Send after Abort = %v, want ErrClientClosed", err)
	}

	// A raw client that closes in the middle of a frame.
	c := dialRaw(t, ts.addr)
	peerB := c.LocalAddr().String()
	stream := append(frame("b1"), frame("b2")...)
	part := frame("never complete")
	stream = append(stream, part[:HeaderSizeForTest+3]...)
	mustWrite(t, c, stream)
	c.Close()

	// A raw client that closes in the middle of a header.
	c2 := dialRaw(t, ts.addr)
	peerC := c2.LocalAddr().String()
	mustWrite(t, c2, append(frame("c1"), header(5)[:10]...))
	c2.Close()

	ts.log.Wait(t, 5*time.Second, 3, "session closed")
	ts.waitSessions(t, 0)
	want := map[string]bool{
		textLine(peerA, "a1"): true, textLine(peerA, "a2"): true, textLine(peerA, "a3"): true,
		textLine(peerB, "b1"): true, textLine(peerB, "b2"): true,
		textLine(peerC, "c1"): true,
	}
	lines := ts.out.Lines()
	for _, l := range lines {
		if !want[l] {
			t.Errorf("unexpected output line %q", l)
		}
		delete(want, l)
	}
	for l := range want {
		t.Errorf("missing output line %q", l)
	}
	if n := ts.log.Count("session closed", peerA, `"reason":"closed without !DISCONNECT"`); n != 1 {
		t.Errorf("aborted session: want one 'closed without !DISCONNECT' log line, have %d", n)
	}
	if n := ts.log.Count("session closed", peerB, `"messages":2`); n != 1 {
		t.Errorf("truncated session: want a 'session closed' line with 2 messages, have %d", n)
	}

	sessiontest.WaitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

const HeaderSizeForTest = transport.HeaderSize

// TestMaxSessionsSequentialReuse: with MaxSessions=1, a client that starts a
// session as soon as the previous one was confirmed is never refused.
func TestMaxSessionsSequentialReuse(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxSessions: 1}, Text, nil)
	for i := range 200 {
		cl, err := Dial(context.Background(), ts.addr, ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Send(fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(); err != nil {
			t.Fatalf("session %d: Close: %v", i, err)
		}
	}
	if n := len(ts.out.Lines()); n != 200 {
		t.Errorf("got %d lines, want 200", n)
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	var conns []net.Conn
	var want []string
	for i := range 3 {
		c := dialRaw(t, ts.addr)
		peer := c.LocalAddr().String()
		var stream []byte
		for m := range 5 + i {
			msg := fmt.Sprintf("s%d m%d", i, m)
			stream = append(stream, frame(msg)...)
			want = append(want, textLine(peer, msg))
		}
		mustWrite(t, c, stream)
		ts.waitMessages(t, peer, int64(5+i))
		// Then a frame the server never gets whole.
		mustWrite(t, c, frame("partial frame")[:HeaderSizeForTest+4])
		conns = append(conns, c)
	}
	ts.waitSessions(t, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v, want under 1s", d)
	}
	if n := len(ts.srv.Sessions()); n != 0 {
		t.Errorf("%d sessions left after Shutdown", n)
	}
	select {
	case <-ts.done:
		if !errors.Is(ts.err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", ts.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	for _, c := range conns {
		expectReset(t, c, 5*time.Second)
	}
	got := ts.out.Lines()
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	for _, l := range got {
		if !wantSet[l] {
			t.Errorf("unexpected output line %q", l)
		}
		delete(wantSet, l)
	}
	for l := range wantSet {
		t.Errorf("missing output line %q", l)
	}
	if n := ts.log.Count("session closed", `"reason":"server shutting down"`); n != 3 {
		t.Errorf("%d sessions logged as ended by shutdown, want 3", n)
	}
	if c, err := net.DialTimeout("tcp", ts.addr, 2*time.Second); err == nil {
		c.Close()
		t.Error("Dial after Shutdown succeeded")
	}
	if err := ts.srv.Serve(newNeverListener()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

// neverListener is a listener Serve must not use.
type neverListener struct{ closed chan struct{} }

func newNeverListener() *neverListener { return &neverListener{closed: make(chan struct{})} }

func (l *neverListener) Accept() (net.Conn, error) { <-l.closed; return nil, net.ErrClosed }
func (l *neverListener) Close() error              { close(l.closed); return nil }
func (l *neverListener) Addr() net.Addr            { return &net.TCPAddr{} }

// TestShutdownWhileOutputBlocked: Shutdown gives up when its context ends,
// and the sessions still end once the output unblocks.
func TestShutdownWhileOutputBlocked(t *testing.T) {
	t.Parallel()
	out := newBlockingWriter()
	ts := startServer(t, Config{}, Text, out)
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, frame("stuck"))
	<-out.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with the output blocked = %v, want context.DeadlineExceeded", err)
	}
	out.release()
	ts.waitSessions(t, 0)
	expectReset(t, c, 5*time.Second)
	if got, want := out.buf.String(), textLine(c.LocalAddr().String(), "stuck")+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	buf      sessiontest.SyncBuffer
	entered  chan struct{} // closed by the first Write
	released chan struct{}
	once     sync.Once
	relOnce  sync.Once
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{entered: make(chan struct{}), released: make(chan struct{})}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.released
	return w.buf.Write(p)
}

func (w *blockingWriter) release() { w.relOnce.Do(func() { close(w.released) }) }

// TestOutputBackPressure: while the output blocks, the session stops reading,
// so its client is not confirmed; once released, everything arrives.
func TestOutputBackPressure(t *testing.T) {
	t.Parallel()
	out := newBlockingWriter()
	t.Cleanup(out.release) // before the server's cleanup, which runs first
	ts := startServer(t, Config{}, Text, out)
	cl, peer := dialClient(t, ts.addr, ClientConfig{WriteTimeout: 30 * time.Second, ConfirmTimeout: 30 * time.Second})

	const n = 5000
	msg := strings.Repeat("x", 200)
	result := make(chan error, 1)
	go func() {
		for i := range n {
			if err := cl.Send(fmt.Appendf(nil, "%05d %s", i, msg)); err != nil {
				result <- err
				return
			}
		}
		result <- cl.Close()
	}()

	select {
	case <-out.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never wrote to its output")
	}
	// The output is blocked. Were the server reading on regardless, it would
	// soon have read !DISCONNECT and confirmed the session; it must not.
	select {
	case err := <-result:
		t.Fatalf("the client finished (Close = %v) while the server's output was blocked", err)
	case <-time.After(500 * time.Millisecond):
	}
	for _, s := range ts.srv.Sessions() {
		if s.Messages != 0 {
			t.Errorf("session reports %d messages written while the output is blocked", s.Messages)
		}
	}
	out.release()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Close after release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client did not finish after the output was released")
	}
	lines := out.buf.Lines()
	if len(lines) != n {
		t.Fatalf("got %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := textLine(peer, fmt.Sprintf("%05d %s", i, msg)); l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
}

// TestServeReturnsAcceptError: a listener failing for good ends Serve with
// its error.
func TestServeReturnsAcceptError(t *testing.T) {
	t.Parallel()
	log := zerolog.New(zerolog.NewTestWriter(t))
	srv, err := NewServer(Config{}, io.Discard, Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := srv.Serve(errListener{boom}); !errors.Is(err, boom) {
		t.Errorf("Serve = %v, want %v", err, boom)
	}
}

type errListener struct{ err error }

func (l errListener) Accept() (net.Conn, error) { return nil, l.err }
func (l errListener) Close() error              { return nil }
func (l errListener) Addr() net.Addr            { return &net.TCPAddr{} }

// TestOutputStallNotBlamedOnClient: time the server spends blocked on its
// output does not count against the client's HeaderTimeout. The client sends
// a frame and part of the next header; the output blocks for longer than
// HeaderTimeout while the client completes its frames at once.
func TestOutputStallNotBlamedOnClient(t *testing.T) {
	t.Parallel()
	const ht = 200 * time.Millisecond
	out := newBlockingWriter()
	t.Cleanup(out.release)
	ts := startServer(t, Config{HeaderTimeout: ht, ReadTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second}, Text, out)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	second := frame("second")
	mustWrite(t, c, append(frame("first"), second[:10]...))
	<-out.entered // the session has read "first" and 10 header bytes
	mustWrite(t, c, append(second[10:], frame(transport.Disconnect)...))
	// The stall itself: the output stays blocked well past HeaderTimeout.
	time.Sleep(3 * ht)
	out.release()
	expectEOF(t, c)
	if got, want := out.buf.String(), textLine(peer, "first")+"\n"+textLine(peer, "second")+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestShutdownClosesEveryListener: a server serving two listeners closes
// both on Shutdown, each Serve returns ErrServerClosed, and Done is closed.
func TestShutdownClosesEveryListener(t *testing.T) {
	t.Parallel()
	log := zerolog.New(zerolog.NewTestWriter(t))
	srv, err := NewServer(Config{}, io.Discard, Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { errs <- srv.Serve(ln) }()
	}
	for _, a := range addrs { // both serve
		cl, err := Dial(context.Background(), a, ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	select {
	case <-srv.Done():
		t.Fatal("Done closed before Shutdown")
	default:
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Serve still runs after Shutdown: its listener was not closed")
		}
	}
	for _, a := range addrs {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Shutdown", a)
		}
	}
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Shutdown")
	}
}
