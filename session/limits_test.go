package session

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// checkWithin fails unless d is in [timeout/2, 5*timeout].
func checkWithin(t *testing.T, what string, d, timeout time.Duration) {
	t.Helper()
	if d < timeout/2 || d > 5*timeout {
		t.Errorf("%s after %v, want about %v (between %v and %v)", what, d, timeout, timeout/2, 5*timeout)
	}
}

func TestMaxPayload(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxPayload: 100}, Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	atLimit := strings.Repeat("a", 100)
	// Two good frames, then a header claiming 101 bytes, with its payload,
	// in one write: the good frames are written out all the same.
	stream := append(frame("ok"), frame(atLimit)...)
	stream = append(stream, header(101)...)
	stream = append(stream, bytes.Repeat([]byte("Z"), 101)...)
	mustWrite(t, c, stream)
	expectReset(t, c, 5*time.Second)
	ts.waitSessions(t, 0)
	want := textLine(peer, "ok") + "\n" + textLine(peer, atLimit) + "\n"
	if got := ts.out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"protocol error"`, "frame too large")
}

// TestMaxPayloadHugeClaim: a header claiming far more than the limit, with no
// payload behind it, is refused at once rather than waited for.
func TestMaxPayloadHugeClaim(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxPayload: 1 << 20, ReadTimeout: 30 * time.Second}, Text, nil)
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, header(999999999999))
	if d := expectReset(t, c, 5*time.Second); d > 2*time.Second {
		t.Errorf("reset took %v", d)
	}
	if got := ts.out.String(); got != "" {
		t.Errorf("output %q, want none", got)
	}
}

func TestBadHeader(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"abc", "12a", "-5", "+5", "0x10", "1 2", "\t5", "5\x00"} {
		t.Run(h, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, Config{}, Text, nil)
			c := dialRaw(t, ts.addr)
			peer := c.LocalAddr().String()
			bad := []byte(h + strings.Repeat(" ", transport.HeaderSize-len(h)))
			mustWrite(t, c, append(append(frame("before"), bad...), frame("after")...))
			expectReset(t, c, 5*time.Second)
			ts.waitSessions(t, 0)
			if got, want := ts.out.String(), textLine(peer, "before")+"\n"; got != want {
				t.Errorf("output %q, want %q", got, want)
			}
			ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"protocol error"`, "malformed length header")
		})
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxSessions: 2}, Text, nil)
	c1, peer1 := dialClient(t, ts.addr, ClientConfig{})
	c2, peer2 := dialClient(t, ts.addr, ClientConfig{})
	ts.waitSessions(t, 2)

	// The third is reset at once: so fast that the reset may already be
	// what connect reports.
	start := time.Now()
	c3, err := net.Dial("tcp", ts.addr)
	if err == nil {
		defer c3.Close()
		expectReset(t, c3, 5*time.Second)
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("third connection: dial: %v, want success or ECONNRESET", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("third connection reset after %v, want promptly", d)
	}
	ts.log.Wait(t, 5*time.Second, 1, "too many sessions")

	for i, c := range []*Client{c1, c2} {
		if err := c.Send([]byte("still here")); err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
		if err := c.Flush(); err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
	}
	ts.waitMessages(t, peer1, 1)
	ts.waitMessages(t, peer2, 1)
	if err := c1.Close(); err != nil {
		t.Fatalf("Close 1: %v", err)
	}
	// A slot is free as soon as the session is confirmed.
	c4, peer4 := dialClient(t, ts.addr, ClientConfig{})
	if err := c4.Send([]byte("fourth")); err != nil {
		t.Fatal(err)
	}
	if err := c4.Close(); err != nil {
		t.Fatalf("Close 4: %v", err)
	}
	if err := c2.Close(); err != nil {
		t.Fatalf("Close 2: %v", err)
	}
	want := map[string]bool{textLine(peer1, "still here"): true, textLine(peer2, "still here"): true, textLine(peer4, "fourth"): true}
	for _, l := range ts.out.Lines() {
		if !want[l] {
			t.Errorf("unexpected line %q", l)
		}
		delete(want, l)
	}
	for l := range want {
		t.Errorf("missing line %q", l)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	cfg := Config{IdleTimeout: idle, HeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second}
	ts := startServer(t, cfg, Text, nil)

	t.Run("silent", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		checkWithin(t, "silent connection reset", expectReset(t, c, 5*time.Second), idle)
	})
	t.Run("after a message", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		peer := c.LocalAddr().String()
		mustWrite(t, c, frame("hi"))
		checkWithin(t, "idle connection reset", expectReset(t, c, 5*time.Second), idle)
		if !strings.Contains(ts.out.String(), textLine(peer, "hi")+"\n") {
			t.Errorf("message before the idle timeout missing from output %q", ts.out.String())
		}
	})
	ts.log.Wait(t, 5*time.Second, 2, "session closed", `"reason":"idle timeout"`)
}

func TestHeaderTimeout(t *testing.T) {
	t.Parallel()
	const ht = 300 * time.Millisecond
	cfg := Config{IdleTimeout: 10 * time.Second, HeaderTimeout: ht, ReadTimeout: 10 * time.Second}
	ts := startServer(t, cfg, Text, nil)

	t.Run("stall", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		mustWrite(t, c, header(5)[:10])
		checkWithin(t, "stalled header dropped", expectReset(t, c, 5*time.Second), ht)
	})
	t.Run("trickle", func(t *testing.T) {
		// Bytes every 50ms keep ReadTimeout happy, but the header as a
		// whole must arrive within HeaderTimeout.
		c := dialRaw(t, ts.addr)
		h := header(5)
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		writeErr := make(chan error, 1)
		go func() {
			for i := range h {
				if _, err := c.Write(h[i : i+1]); err != nil {
					writeErr <- err
					return
				}
				select {
				case <-stop:
					writeErr <- nil
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			writeErr <- nil
		}()
		expectResetWhileWriting(t, c, 5*time.Second, writeErr)
		checkWithin(t, "trickled header dropped", time.Since(start), ht)
	})
	if t.Failed() {
		return
	}
	ts.log.Wait(t, 5*time.Second, 2, "session closed", `"reason":"stalled inside a frame"`)
	if got := ts.out.String(); got != "" {
		t.Errorf("output %q, want none", got)
	}
}

func TestReadTimeout(t *testing.T) {
	t.Parallel()
	const rt = 300 * time.Millisecond
	cfg := Config{IdleTimeout: 10 * time.Second, HeaderTimeout: 10 * time.Second, ReadTimeout: rt}
	ts := startServer(t, cfg, Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	mustWrite(t, c, append(frame("complete"), frame("thirty bytes of payload.......")[:transport.HeaderSize+5]...))
	checkWithin(t, "stalled payload dropped", expectReset(t, c, 5*time.Second), rt)
	ts.log.Wait(t, 5*time.Second, 1, "session closed", `"reason":"stalled inside a frame"`)
	if got, want := ts.out.String(), textLine(peer, "complete")+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestTrickleWithinReadTimeout: a client that sends one byte every 50ms
// never stalls for ReadTimeout, so its frame gets through. The frame takes
// about 4.7 s, more than twice ReadTimeout; ReadTimeout is 40 times the
// pace, so that a loaded machine delaying this test's writer does not
// count as the client stalling.
func TestTrickleWithinReadTimeout(t *testing.T) {
	t.Parallel()
	cfg := Config{IdleTimeout: 20 * time.Second, HeaderTimeout: 20 * time.Second, ReadTimeout: 2 * time.Second}
	ts := startServer(t, cfg, Text, nil)
	c := dialRaw(t, ts.addr)
	if err := c.SetNoDelay(true); err != nil {
		t.Fatal(err)
	}
	peer := c.LocalAddr().String()
	msg := "a thirty byte message, slowly"
	msg += strings.Repeat(".", 30-len(msg))
	f := frame(msg)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := range f {
		mustWrite(t, c, f[i:i+1])
		<-tick.C
	}
	mustWrite(t, c, frame(transport.Disconnect))
	expectEOF(t, c)
	if got, want := ts.out.String(), textLine(peer, msg)+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
