//go:build linux

package main

// TestAdversarial attacks the real `lanmsg serve` binary over loopback with
// raw sockets (hostile headers, slow and vanishing clients, floods, a stalled
// output, signals under load) and the real `lanmsg send` with fake servers.
// After each attack on the server it checks that (a) a valid client still
// gets through, (b) goroutines and sessions, (c) file descriptors and (e) the
// heap return to their baselines, and (d) the process is idle. The harness is
// in adv_harness_test.go.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

func TestAdversarial(t *testing.T) {
	if testing.Short() {
		t.Skip("the adversarial suite takes about a minute; skipped with -short")
	}
	advBin = advBuild(t, t.TempDir())
	t.Cleanup(func() { advBin = "" })

	t.Run("MalformedFrames", advMalformedFrames)
	t.Run("MemoryBoundedByBytesReceived", advMemoryBounded)
	t.Run("SlowClients", advSlowClients)
	t.Run("HeaderTimeoutIsTotal", advHeaderTimeoutTotal)
	t.Run("ConnectFlood", advConnectFlood)
	t.Run("BeyondMaxSessions", advBeyondMaxSessions)
	t.Run("VanishingClients", advVanishingClients)
	t.Run("BlockedOutput", advBlockedOutput)
	t.Run("SIGTERMUnderLoad", advSIGTERMUnderLoad)
	t.Run("SecondSignalWhileOutputBlocked", advSecondSignal)
	t.Run("SendAgainstHostileServers", advSendHostileServers)
}

func advPad(s string) string { return s + strings.Repeat(" ", transport.HeaderSize-len(s)) }

// 1. Every malformed header or frame resets the connection; the frames
// before it are written, nothing of it or after it is. Valid oddities
// (invalid UTF-8, control bytes, empty and maximal payloads) are delivered
// as documented.
func advMalformedFrames(t *testing.T) {
	s := advStart(t, nil, "--max-payload", "1MiB")
	const maxPayload = 1 << 20
	after := string(advFrame("AFTER-bad-frame")) // must never be parsed

	bad := []struct {
		name     string
		bytes    string
		truncate bool // then half-close: the stream ends inside the frame
	}{
		{"letters", advPad("12a") + "BAD-payload" + after, false},
		{"letters only", advPad("abc") + after, false},
		{"hex", advPad("0x10") + "BAD-payload......" + after, false},
		{"plus sign", advPad("+5") + "BAD-5" + after, false},
		{"minus sign", advPad("-5") + "BAD-5" + after, false},
		{"minus zero", advPad("-0") + after, false},
		{"space inside", advPad("1 2") + "BAD-payload" + after, false},
		{"decimal point", advPad("1.5") + "B" + after, false},
		{"NUL after digits", advPad("5\x00") + "BAD-5" + after, false},
		{"NUL padding", "5" + strings.Repeat("\x00", 63) + "BAD-5" + after, false},
		{"all NULs", strings.Repeat("\x00", 64) + after, false},
		{"NUL first", "\x00" + advPad("5")[:63] + "BAD-5" + after, false},
		{"tab", "\t5" + strings.Repeat(" ", 62) + "BAD-5" + after, false},
		{"CRLF", advPad("5\r\n") + "BAD-5" + after, false},
		{"all spaces", strings.Repeat(" ", 64) + after, false},
		{"high byte", advPad("5\xff") + "BAD-5" + after, false},
		{"overflow 20 digits", advPad("99999999999999999999") + "BAD" + after, false},
		{"overflow 64 nines", strings.Repeat("9", 64) + "BAD" + after, false},
		{"max int64", advPad("9223372036854775807") + "BAD" + after, false},
		{"max plus one", advPad(strconv.Itoa(maxPayload+1)) + "BAD-payload" + after, false},
		{"1 GiB", advPad(strconv.Itoa(1<<30)) + "BAD-payload" + after, false},
		{"truncated header", "5" + strings.Repeat(" ", 20), true},
		{"truncated header, 63 bytes", advPad("5")[:63], true},
		{"truncated payload", string(advHeader(100)) + "BAD-partial", true},
		{"truncated empty payload", string(advHeader(100)), true},
		{"truncated !DISCONNECT", string(advHeader(len(transport.Disconnect))) + "!DISCON", true},
	}
	good := []struct {
		name, msg, line string
	}{
		{"zero length", "", ""},
		{"invalid UTF-8", "a\xffb\xc3(z\xed\xa0\x80", "a\uFFFDb\uFFFD(z\uFFFD\uFFFD\uFFFD"},
		{"overlong NUL", "x\xc0\x80y", "x\uFFFD\uFFFDy"},
		{"control bytes", "tab\there\x01\x1b[2J\r\n\\", `tab` + "\t" + `here\x01\x1b[2J\r\n\\`},
		{"valid UTF-8", "héllo ✓ 😀", "héllo ✓ 😀"},
		{"header with spaces and zeros", "", ""}, // sent as "  0005   " below
		{"exactly max payload", strings.Repeat("x", maxPayload), strings.Repeat("x", maxPayload)},
	}

	type result struct {
		peer, name string
		end        advEnd
		err        error
		want       []string
	}
	results := make(chan result, len(bad)+len(good))
	var wg sync.WaitGroup
	for _, tc := range bad {
		wg.Go(func() {
			c := advDial(t, s.addr)
			before := "before " + tc.name
			stream := append(advFrame(before), tc.bytes...)
			_, _ = c.Write(stream) // the server may reset before taking it all
			if tc.truncate {
				_ = c.CloseWrite()
			}
			end, _, err := advReadEnd(c, 10*time.Second)
			results <- result{c.LocalAddr().String(), tc.name, end, err, []string{before}}
		})
	}
	for _, tc := range good {
		wg.Go(func() {
			c := advDial(t, s.addr)
			f := advFrame(tc.msg)
			if tc.name == "header with spaces and zeros" {
				f = append([]byte("  0005"+strings.Repeat(" ", 58)), "12345"...)
				tc.line = "12345"
			}
			stream := append(advFrame("before "+tc.name), f...)
			stream = append(stream, advDisconnect...)
			if _, err := c.Write(stream); err != nil {
				t.Errorf("%s: write: %v", tc.name, err)
			}
			end, _, err := advReadEnd(c, 10*time.Second)
			results <- result{c.LocalAddr().String(), tc.name, end, err, []string{"before " + tc.name, tc.line}}
		})
	}
	wg.Wait()
	close(results)

	out := s.output()
	for r := range results {
		wantEnd := advReset
		if len(r.want) == 2 {
			wantEnd = advEOF
		}
		if r.end != wantEnd {
			t.Errorf("%s: connection ended with %v (%v), want %v", r.name, r.end, r.err, wantEnd)
		}
		got := advPeerLines(out, r.peer)
		if len(got) != len(r.want) {
			t.Errorf("%s: %d output lines %.200q, want %.200q", r.name, len(got), got, r.want)
			continue
		}
		for i := range got {
			if got[i] != r.want[i] {
				t.Errorf("%s: line %d = %.200q, want %.200q", r.name, i, got[i], r.want[i])
			}
		}
	}
	if strings.Contains(out, "BAD") || strings.Contains(out, "AFTER") {
		t.Errorf("bytes of a malformed frame reached the output:\n%.2000s", out)
	}
	if n := s.log.Count("protocol error"); n < len(bad)-5 { // truncation is a protocol error too
		t.Errorf("only %d sessions logged a protocol error, want about %d", n, len(bad))
	}
	s.sendValid("after malformed frames")
	s.checkRecovered()
}

// advGoroutinesIn counts the server's goroutines whose stack includes fn,
// from /debug/pprof/goroutine?debug=1.
func (s *advServer) goroutinesIn(fn string) int {
	s.t.Helper()
	resp, err := advHTTP.Get("http://" + s.debugAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	_, text, _ := strings.Cut(string(body), "\n") // "goroutine profile: total N"
	n := 0
	for _, rec := range strings.Split(text, "\n\n") {
		var count int
		if _, err := fmt.Sscanf(rec, "%d @", &count); err == nil && strings.Contains(rec, fn) {
			n += count
		}
	}
	return n
}

// 2. Memory follows the bytes received, not the lengths claimed: 1000
// sessions that each claimed a 1 MiB-1 payload and sent none of it hold a
// few KiB each, not 1 MiB (nor a 64 KiB buffer) each.
func advMemoryBounded(t *testing.T) {
	const conns = 1000
	advRaiseNofile(t, 2*conns+200) // both ends are on this machine
	s := advStart(t, nil, "--max-payload", "1MiB", "--max-sessions", strconv.Itoa(conns+10), "--max-sessions-per-host", strconv.Itoa(conns+10))
	claim := advHeader(1<<20 - 1)
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		cs[i] = advDial(t, s.addr)
		if _, err := cs[i].Write(claim); err != nil {
			t.Fatal(err)
		}
	}
	// Every session has read its header and waits for the payload.
	var n int
	advPoll(t, 20*time.Second, func() bool { n = s.goroutinesIn("transport.(*Reader).readBig"); return n >= conns },
		func() string { return fmt.Sprintf("%d of %d sessions waiting inside a payload", n, conns) })
	st := s.state(true)
	rss := s.rss()
	t.Logf("%d sessions each claiming %d bytes: heap %s (baseline %s), VmRSS %s (baseline %s)",
		st.Sessions, 1<<20-1, advMiB(st.HeapBytes), advMiB(s.base.heap), advMiB(rss), advMiB(s.base.rss))
	if st.Sessions != conns {
		t.Errorf("%d sessions, want %d", st.Sessions, conns)
	}
	// 64 header bytes received per session: allow 16 KiB of heap per
	// session (buffers, structs, runtime) over the baseline.
	if limit := s.base.heap + conns*16<<10; st.HeapBytes > limit {
		t.Errorf("heap %s with %d idle claims, want at most %s: memory follows the claimed lengths", advMiB(st.HeapBytes), conns, advMiB(limit))
	}
	if rss > 64<<20 {
		t.Errorf("VmRSS %s with %d idle claims, want under 64 MiB", advMiB(rss), conns)
	}
	for _, c := range cs {
		c.Close()
	}
	s.sendValid("after 1000 claims")
	s.checkRecovered()
}

// 3. A trickling client gets its frame through without holding up a fast
// one; a client that stalls inside a frame past --read-timeout, or says
// nothing past --idle-timeout, is reset on time.
func advSlowClients(t *testing.T) {
	const readTimeout, idleTimeout = 2 * time.Second, 1 * time.Second
	s := advStart(t, nil, "--read-timeout", readTimeout.String(), "--header-timeout", "10s", "--idle-timeout", idleTimeout.String())

	var wg sync.WaitGroup
	// The trickler: one byte every 20 ms, header and payload.
	const trickled = "trickled, one byte at a time ✓"
	tc := advDial(t, s.addr)
	started, trickleDone := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		defer close(trickleDone)
		for i, b := range advFrame(trickled) {
			if i == 10 {
				close(started)
			}
			if _, err := tc.Write([]byte{b}); err != nil {
				t.Errorf("trickle: byte %d: %v", i, err)
				return
			}
			time.Sleep(20 * time.Millisecond) // the attack's pace
		}
	})

	// Stallers: inside a payload, inside a header, and idle (before any
	// frame and after one).
	type stall struct {
		name    string
		bytes   []byte
		timeout time.Duration
		want    string // the message delivered before the stall
	}
	stalls := []stall{
		{"stall in payload", append(advHeader(100), "partial"...), readTimeout, ""},
		{"stall in header", []byte("100      "), readTimeout, ""},
		{"idle before any frame", nil, idleTimeout, ""},
		{"idle after a frame", advFrame("idle after this"), idleTimeout, "idle after this"},
	}
	for _, st := range stalls {
		wg.Go(func() {
			c := advDial(t, s.addr)
			if len(st.bytes) > 0 {
				if _, err := c.Write(st.bytes); err != nil {
					t.Errorf("%s: %v", st.name, err)
					return
				}
			}
			end, d, err := advReadEnd(c, 20*time.Second)
			if end != advReset {
				t.Errorf("%s: %v (%v) after %v, want a reset", st.name, end, err, d)
			}
			if d < st.timeout/2 || d > 5*st.timeout {
				t.Errorf("%s: reset after %v, want about %v (between %v and %v)", st.name, d, st.timeout, st.timeout/2, 5*st.timeout)
			}
			got := advPeerLines(s.output(), c.LocalAddr().String())
			if st.want == "" && len(got) != 0 || st.want != "" && (len(got) != 1 || got[0] != st.want) {
				t.Errorf("%s: output %q, want %q", st.name, got, st.want)
			}
		})
	}

	// The fast client, while the trickler is mid-frame.
	<-started
	msgs := make([]string, 10000)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("fast %05d", i)
	}
	fc := advDial(t, s.addr)
	var stream []byte
	for _, m := range msgs {
		stream = transport.AppendFrame(stream, []byte(m))
	}
	stream = append(stream, advDisconnect...)
	start := time.Now()
	if _, err := fc.Write(stream); err != nil {
		t.Fatal(err)
	}
	end, d, err := advReadEnd(fc, 10*time.Second)
	fastTook := time.Since(start)
	if end != advEOF {
		t.Fatalf("fast client: %v (%v) after %v, want confirmation", end, err, d)
	}
	select {
	case <-trickleDone:
		t.Errorf("the fast client's confirmation (after %v) came only after the trickler finished", fastTook)
	default:
	}
	if fastTook > time.Second {
		t.Errorf("10,000 messages took %v to be confirmed next to a trickler, want well under 1s", fastTook)
	}
	t.Logf("10,000 messages confirmed in %v while a frame trickled in", fastTook)
	if got := advPeerLines(s.output(), fc.LocalAddr().String()); len(got) != len(msgs) {
		t.Errorf("fast client: %d lines, want %d", len(got), len(msgs))
	} else {
		for i := range got {
			if got[i] != msgs[i] {
				t.Fatalf("fast client line %d = %q, want %q", i, got[i], msgs[i])
			}
		}
	}

	<-trickleDone
	if _, err := tc.Write(advDisconnect); err != nil {
		t.Fatal(err)
	}
	if end, _, err := advReadEnd(tc, 10*time.Second); end != advEOF {
		t.Fatalf("trickler: %v (%v), want confirmation", end, err)
	}
	if got := advPeerLines(s.output(), tc.LocalAddr().String()); len(got) != 1 || got[0] != trickled {
		t.Errorf("trickler's output %q, want %q", got, trickled)
	}
	wg.Wait()
	s.sendValid("after slow clients")
	s.checkRecovered()
}

// 3b. --header-timeout bounds the whole header: a client that sends a header
// byte every 100 ms (never stalling for --read-timeout) is still reset once
// the header has taken --header-timeout.
func advHeaderTimeoutTotal(t *testing.T) {
	const headerTimeout = time.Second
	s := advStart(t, nil, "--header-timeout", headerTimeout.String(), "--read-timeout", "5s", "--idle-timeout", "5s")
	c := advDial(t, s.addr)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for _, b := range advHeader(5) {
			if _, err := c.Write([]byte{b}); err != nil {
				return // reset: expected
			}
			time.Sleep(100 * time.Millisecond) // the attack's pace
		}
	}()
	end, _, err := advReadEnd(c, 20*time.Second)
	d := time.Since(start)
	<-done
	if end != advReset {
		t.Fatalf("slow header: %v (%v), want a reset", end, err)
	}
	if d < headerTimeout/2 || d > 3*headerTimeout {
		t.Errorf("slow header reset after %v, want about %v (and before the 5s read timeout)", d, headerTimeout)
	}
	s.sendValid("after a slow header")
	s.checkRecovered()
}

// 4a. 2,000 connections that open and close without a word, from several
// goroutines as fast as they can, while a valid client keeps sending: every
// one of its sessions is confirmed.
func advConnectFlood(t *testing.T) {
	s := advStart(t, nil, "--max-sessions", "4000", "--max-sessions-per-host", "4000")
	const floodConns, floodWorkers = 2000, 8
	var wg sync.WaitGroup
	var dialErrs atomic.Int64
	floodDone := make(chan struct{})
	for w := range floodWorkers {
		wg.Go(func() {
			for i := range floodConns / floodWorkers {
				c, err := net.Dial("tcp", s.addr)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				if (i+w)%2 == 0 {
					_ = c.(*net.TCPConn).SetLinger(0) // vanish with a reset
				}
				c.Close()
			}
		})
	}
	go func() { wg.Wait(); close(floodDone) }()

	var confirmed []string
	for i := 0; ; i++ {
		msg := fmt.Sprintf("valid during the flood %d", i)
		if err := advSession(s.addr, []string{msg}, 5*time.Second); err != nil {
			t.Fatalf("valid session %d during the flood: %v", i, err)
		}
		confirmed = append(confirmed, msg)
		select {
		case <-floodDone:
		default:
			continue
		}
		if i >= 3 {
			break
		}
	}
	if n := dialErrs.Load(); n > 0 {
		t.Errorf("%d flood connections could not connect", n)
	}
	out := s.output()
	for _, m := range confirmed {
		if strings.Count(out, "] : "+m+"\n") != 1 {
			t.Errorf("confirmed %q is not in the output exactly once", m)
		}
	}
	t.Logf("%d flood connections; %d valid sessions confirmed during the flood", floodConns, len(confirmed))
	s.sendValid("after the connect flood")
	s.checkRecovered()
}

// 4b. With --max-sessions held by idle clients, 500 more connections are
// each reset at once, the refusals are logged at most once a second, and the
// slots come back when the holders leave.
func advBeyondMaxSessions(t *testing.T) {
	const limit, extra = 50, 500
	s := advStart(t, nil, "--max-sessions", strconv.Itoa(limit), "--max-sessions-per-host", strconv.Itoa(limit))
	holders := make([]*net.TCPConn, limit)
	for i := range holders {
		holders[i] = advDial(t, s.addr)
	}
	var st advState
	advPoll(t, 10*time.Second, func() bool { st = s.state(false); return st.Sessions == limit },
		func() string { return fmt.Sprintf("%d sessions, want %d", st.Sessions, limit) })

	start := time.Now()
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 5 {
		wg.Go(func() {
			for range extra / 5 {
				t0 := time.Now()
				c, err := net.Dial("tcp", s.addr)
				end := advReset // reset so fast that connect reported it
				if err == nil {
					end, _, err = advReadEnd(c, 5*time.Second)
					c.Close()
				} else if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("dial: %v", err)
					return
				}
				d := time.Since(t0)
				if end != advReset {
					t.Errorf("connection beyond the limit: %v (%v), want a reset", end, err)
				}
				for {
					old := slowest.Load()
					if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if d := time.Duration(slowest.Load()); d > time.Second {
		t.Errorf("slowest refusal took %v, want under 1s", d)
	}
	const refusal = "connection refused: too many sessions"
	lines := s.log.Count(refusal)
	if lines < 1 || lines > int(elapsed/time.Second)+2 {
		t.Errorf("%d refusal log lines for %d refusals over %v: want at least one, at most one a second", lines, extra, elapsed)
	}
	t.Logf("%d refusals in %v (slowest %v), %d log lines", extra, elapsed, time.Duration(slowest.Load()), lines)
	if st = s.state(false); st.Sessions != limit {
		t.Errorf("%d sessions after the refusals, want the %d holders", st.Sessions, limit)
	}
	for _, c := range holders {
		c.Close()
	}
	s.sendValid("after the holders left")
	s.checkRecovered()
}

// 5. Clients that vanish mid-frame (reset, or half-close) end their sessions
// without a spin or a leak; a frame before the vanishing is delivered.
func advVanishingClients(t *testing.T) {
	s := advStart(t, nil, "--max-payload", "1MiB", "--max-sessions-per-host", "1000")
	closedBefore := s.log.Count("session closed")
	kinds := []struct {
		name    string
		partial []byte
		rst     bool
	}{
		{"reset in header", []byte("12   "), true},
		{"reset in payload", append(advHeader(1000), "half"...), true},
		{"reset in big payload", append(advHeader(1<<20-1), make([]byte, 100<<10)...), true},
		{"half-close in header", []byte("12   "), false},
		{"half-close in payload", append(advHeader(1000), "half"...), false},
		{"reset when idle", nil, true},
		{"half-close when idle", nil, false},
	}
	const each = 20
	var wg sync.WaitGroup
	type sent struct{ peer, msg string }
	var mu sync.Mutex
	var delivered []sent
	for _, k := range kinds {
		for i := range each {
			wg.Go(func() {
				c := advDial(t, s.addr)
				msg := fmt.Sprintf("before %s %d", k.name, i)
				if _, err := c.Write(append(advFrame(msg), k.partial...)); err != nil {
					t.Errorf("%s: %v", k.name, err)
					return
				}
				mu.Lock()
				delivered = append(delivered, sent{c.LocalAddr().String(), msg})
				mu.Unlock()
				if k.rst {
					_ = c.SetLinger(0)
					c.Close()
					return
				}
				_ = c.CloseWrite()
				want := advReset
				if k.partial == nil {
					want = advEOF // ended between frames: an orderly end
				}
				if end, _, err := advReadEnd(c, 10*time.Second); end != want {
					t.Errorf("%s: %v (%v), want %v", k.name, end, err, want)
				}
			})
		}
	}
	wg.Wait()
	total := len(kinds) * each
	s.log.Wait(t, 10*time.Second, closedBefore+total, "session closed")
	out := s.output()
	for _, d := range delivered {
		if got := advPeerLines(out, d.peer); len(got) != 1 || got[0] != d.msg {
			t.Errorf("client %s: output %q, want %q", d.peer, got, d.msg)
		}
	}
	s.sendValid("after vanishing clients")
	s.checkRecovered()
}

// advPipe makes a pipe for a server's stdout; the test closes its copy of
// the write end once the server has started.
func advPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// advBigSender streams frames of msgs to addr, then !DISCONNECT, and waits
// for the confirmation; progress counts the bytes written.
func advBigSender(addr string, msgs func(yield func(string) bool), progress *atomic.Int64, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	write := func(b []byte) error {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		n, err := c.Write(b)
		progress.Add(int64(n))
		return err
	}
	var buf []byte
	for m := range msgs {
		buf = transport.AppendFrame(buf, []byte(m))
		if len(buf) >= 64<<10 {
			if err := write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := write(append(buf, advDisconnect...)); err != nil {
		return err
	}
	if end, _, err := advReadEnd(c, timeout); end != advEOF {
		return fmt.Errorf("not confirmed: %v (%v)", end, err)
	}
	return nil
}

// advWaitStalled waits until progress stops moving for 300 ms.
func advWaitStalled(t *testing.T, progress *atomic.Int64) int64 {
	t.Helper()
	last, since := int64(-1), time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := progress.Load()
		if p != last {
			last, since = p, time.Now()
		} else if p > 0 && time.Since(since) > 300*time.Millisecond {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("senders never stalled (%d bytes written)", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 6. An output that cannot keep up (stdout a pipe nobody reads) stops the
// sessions, not the memory: 200 MiB from 8 senders leave the server small,
// no session is confirmed while its messages are unwritten, and once the
// pipe drains every message arrives exactly once and every sender is
// confirmed.
func advBlockedOutput(t *testing.T) {
	r, w := advPipe(t)
	s := advStart(t, w)
	w.Close()

	const senders, perSender, size = 8, 6400, 4096 // 8 x 6400 x 4 KiB = 200 MiB
	pad := strings.Repeat("p", size)
	var progress atomic.Int64
	results := make(chan error, senders+2)
	var confirmedCount atomic.Int64
	for i := range senders {
		go func() {
			err := advBigSender(s.addr, func(yield func(string) bool) {
				for j := range perSender {
					m := fmt.Sprintf("big%d-%06d ", i, j)
					if !yield(m + pad[:size-len(m)]) {
						return
					}
				}
			}, &progress, 2*time.Minute)
			if err == nil {
				confirmedCount.Add(1)
			}
			results <- err
		}()
	}
	stalledAt := advWaitStalled(t, &progress)
	st := s.state(true)
	rss := s.rss()
	t.Logf("output blocked: senders stalled after %s of %s; server heap %s, VmRSS %s",
		advMiB(stalledAt), advMiB(senders*perSender*size), advMiB(st.HeapBytes), advMiB(rss))
	if rss > 100<<20 {
		t.Errorf("VmRSS %s while the output is blocked, want under 100 MiB", advMiB(rss))
	}
	if st.HeapBytes > 32<<20 {
		t.Errorf("heap %s while the output is blocked, want under 32 MiB", advMiB(st.HeapBytes))
	}
	// Two small sessions that finish sending while the output is blocked:
	// their confirmation must wait for their messages to be written.
	for i := range 2 {
		go func() {
			err := advBigSender(s.addr, func(yield func(string) bool) {
				for j := range 10 {
					yield(fmt.Sprintf("small%d-%06d", i, j))
				}
			}, &progress, 2*time.Minute)
			if err == nil {
				confirmedCount.Add(1)
			}
			results <- err
		}()
	}
	advPoll(t, 10*time.Second, func() bool { return s.state(false).Sessions == senders+2 }, func() string { return "the small sessions did not start" })
	time.Sleep(500 * time.Millisecond) // a window in which no confirmation may come
	if n := confirmedCount.Load(); n != 0 {
		t.Fatalf("%d senders confirmed while the output was blocked", n)
	}
	if st := s.state(false); st.Sessions != senders+2 {
		t.Fatalf("%d sessions while blocked, want %d", st.Sessions, senders+2)
	}

	// Drain.
	counts := make(map[string]int)
	var lines, bad int
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines++
			_, text, ok := strings.Cut(sc.Text(), "] : ")
			id, _, _ := strings.Cut(text, " ")
			if !ok || !strings.HasPrefix(id, "big") && !strings.HasPrefix(id, "small") {
				bad++
				continue
			}
			counts[id]++
		}
		readDone <- sc.Err()
	}()
	for range senders + 2 {
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("sender: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("senders not confirmed 2 minutes after the output drained")
		}
	}
	s.stop()
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	want := senders*perSender + 2*10
	if lines != want || len(counts) != want || bad != 0 {
		t.Errorf("%d lines, %d distinct messages, %d malformed lines; want %d messages exactly once", lines, len(counts), bad, want)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("message %s arrived %d times", id, n)
		}
	}
}

// 7a. SIGTERM under load: 20 clients sending without pause, sessions being
// confirmed throughout. The server exits 0 within 2 s, and every message of
// every confirmed session is in the output exactly once (and no message
// twice).
func advSIGTERMUnderLoad(t *testing.T) {
	s := advStart(t, nil)
	const clients = 20
	var (
		mu        sync.Mutex
		confirmed []string
		sessions  int
		stop      atomic.Bool
		enough    = make(chan struct{})
		wg        sync.WaitGroup
	)
	pad := strings.Repeat("x", 80)
	for ci := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(ci), 7))
			for si := 0; !stop.Load(); si++ {
				c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
				if err != nil {
					return // the server has gone
				}
				n := 1 + rng.IntN(300)
				ids := make([]string, n)
				var buf []byte
				failed := false
				for m := range n {
					ids[m] = fmt.Sprintf("c%02d-s%05d-m%03d", ci, si, m)
					buf = transport.AppendFrame(buf, []byte(ids[m]+" "+pad))
					if len(buf) > 4<<10 || m == n-1 {
						if m == n-1 {
							buf = append(buf, advDisconnect...)
						}
						_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
						if _, err := c.Write(buf); err != nil {
							failed = true
							break
						}
						buf = buf[:0]
					}
				}
				if !failed {
					if end, _, _ := advReadEnd(c, 10*time.Second); end == advEOF {
						mu.Lock()
						confirmed = append(confirmed, ids...)
						sessions++
						if sessions == 100 {
							close(enough)
						}
						mu.Unlock()
					}
				}
				c.Close()
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("fewer than 100 sessions confirmed in 30s")
	}
	start := time.Now()
	s.signal(syscall.SIGTERM)
	at, err := s.waitExit(10 * time.Second)
	stop.Store(true)
	wg.Wait()
	if took := at.Sub(start); err != nil || took > 2*time.Second {
		t.Errorf("SIGTERM under load: exit %v after %v, want 0 within 2s", err, took)
	} else {
		t.Logf("exited 0 %v after SIGTERM", took)
	}
	counts := make(map[string]int)
	for _, l := range advLines(s.output()) {
		_, text, _ := strings.Cut(l, "] : ")
		id, _, _ := strings.Cut(text, " ")
		counts[id]++
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("message %s in the output %d times", id, n)
		}
	}
	missing := 0
	for _, id := range confirmed {
		if counts[id] != 1 {
			missing++
			if missing < 5 {
				t.Errorf("message %s of a confirmed session is not in the output", id)
			}
		}
	}
	t.Logf("%d sessions (%d messages) confirmed; %d messages in the output; %d confirmed missing",
		sessions, len(confirmed), len(counts), missing)
	if missing > 0 {
		t.Errorf("%d messages of confirmed sessions missing", missing)
	}
}

// 7b. A second signal ends the server at once, even when the first one's
// shutdown cannot finish because the output is blocked.
func advSecondSignal(t *testing.T) {
	r, w := advPipe(t)
	s := advStart(t, w)
	w.Close()
	_ = r // never read: the output stays blocked
	var progress atomic.Int64
	senderDone := make(chan error, 1)
	go func() {
		senderDone <- advBigSender(s.addr, func(yield func(string) bool) {
			for i := 0; ; i++ {
				if !yield(fmt.Sprintf("m%08d %s", i, strings.Repeat("y", 1000))) {
					return
				}
			}
		}, &progress, 30*time.Second)
	}()
	advWaitStalled(t, &progress)
	s.signal(syscall.SIGTERM)
	s.log.Wait(t, 5*time.Second, 1, "shutting down")
	start := time.Now()
	s.signal(syscall.SIGINT)
	at, err := s.waitExit(10 * time.Second)
	took := at.Sub(start)
	t.Logf("second signal: exited (%v) %v after SIGINT", err, took)
	if took > 500*time.Millisecond {
		t.Errorf("the server took %v to exit after a second signal, want at once (the shutdown grace is 1.5s)", took)
	}
	if err == nil {
		t.Errorf("exit status 0 after the second signal: the graceful shutdown ran its course instead")
	}
	if err := <-senderDone; err == nil {
		t.Errorf("the sender was confirmed though its messages were never written")
	}
}

// 8. `lanmsg send` against servers that misbehave: it exits with the
// documented code, says 'lanmsg: error:', and never hangs.
func advSendHostileServers(t *testing.T) {
	// listen runs a fake server; handle gets each connection and a channel
	// closed when the test ends.
	listen := func(t *testing.T, handle func(c net.Conn, done <-chan struct{})) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() {
					defer c.Close()
					go func() { <-done; c.Close() }() // unblock the handler
					handle(c, done)
				})
			}
		})
		return ln.Addr().String()
	}
	// bigStdin streams n bytes of 1 KiB lines.
	bigStdin := func(n int) io.Reader {
		line := strings.Repeat("z", 1023) + "\n"
		return io.LimitReader(&advRepeatReader{s: line}, int64(n))
	}

	check := func(t *testing.T, wantCode int, within time.Duration, stdin io.Reader, args ...string) {
		t.Helper()
		start := time.Now()
		code, stderr := advRunSend(t, within+10*time.Second, stdin, args...)
		d := time.Since(start)
		if code != wantCode {
			t.Errorf("exit %d after %v, want %d; stderr:\n%s", code, d, wantCode, stderr)
		}
		if d > within {
			t.Errorf("took %v, want under %v", d, within)
		}
		if !strings.HasPrefix(stderr, "lanmsg: error: ") && !strings.Contains(stderr, "\nlanmsg: error: ") {
			t.Errorf("no 'lanmsg: error:' line in stderr:\n%s", stderr)
		}
		t.Logf("exit %d after %v: %s", code, d, advErrorLine(stderr))
	}

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		check(t, exitUnreachable, 2*time.Second, nil, "--server", addr, "hello")
	})
	t.Run("reset mid-stream", func(t *testing.T) {
		addr := listen(t, func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.CopyN(io.Discard, c, 256<<10)
			_ = c.(*net.TCPConn).SetLinger(0)
		})
		check(t, exitUnconfirmed, 5*time.Second, bigStdin(20<<20), "--server", addr)
	})
	t.Run("reset after !DISCONNECT", func(t *testing.T) {
		addr := listen(t, func(c net.Conn, _ <-chan struct{}) {
			r := transport.NewReader(c, 0)
			for {
				p, err := r.ReadFrame()
				if err != nil || string(p) == transport.Disconnect {
					break
				}
			}
			_ = c.(*net.TCPConn).SetLinger(0)
		})
		check(t, exitUnconfirmed, 5*time.Second, nil, "--server", addr, "one", "two")
	})
	t.Run("never closes after !DISCONNECT", func(t *testing.T) {
		addr := listen(t, func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.Copy(io.Discard, c) // reads everything, never closes
		})
		check(t, exitUnconfirmed, 1*time.Second+3*time.Second, nil, "--server", addr, "--confirm-timeout", "1s", "hello")
	})
	t.Run("stops reading", func(t *testing.T) {
		addr := listen(t, func(c net.Conn, done <-chan struct{}) {
			<-done // never reads
		})
		check(t, exitUnconfirmed, 1*time.Second+4*time.Second, bigStdin(100<<20), "--server", addr, "--confirm-timeout", "1s")
	})
	t.Run("closes before the messages arrive", func(t *testing.T) {
		// A server that closes normally before the messages reach it has
		// read none of them: that close is not a confirmation. The
		// messages are sent only once the server has closed.
		closed := make(chan struct{}, 1)
		addr := listen(t, func(c net.Conn, _ <-chan struct{}) {
			// send tries TLS first: a ClientHello (first byte 0x16) is
			// refused by closing at once. The plain session that follows
			// sends nothing until its input comes, after the close.
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var first [1]byte
			if n, _ := c.Read(first[:]); n == 1 && first[0] == 0x16 {
				c.Close()
				return
			}
			c.Close() // FIN, before anything arrives
			closed <- struct{}{}
		})
		pr, pw := io.Pipe()
		go func() {
			<-closed
			_, _ = pw.Write([]byte("hello\n"))
			pw.Close()
		}()
		check(t, exitUnconfirmed, 5*time.Second, pr, "--server", addr, "--confirm-timeout", "2s")
	})
}

// advRepeatReader repeats s forever.
type advRepeatReader struct {
	s string
	i int
}

func (r *advRepeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.i:])
		n += c
		r.i = (r.i + c) % len(r.s)
	}
	return n, nil
}

// advErrorLine returns the 'lanmsg: error:' line of stderr.
func advErrorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "lanmsg: error:") {
			return l
		}
	}
	return ""
}
