package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

func init() {
	register("soak", "many clients for a while: sessions, messages sent vs received, peak memory", runSoak)
}

// soakStats are one client's counts.
type soakStats struct {
	sessions  int64 // confirmed
	messages  int64 // in confirmed sessions
	failed    int64 // sessions not confirmed
	lastError error
}

// runSoak starts a server, runs -clients clients that each repeat sessions
// of 1..1000 messages (connect, send, !DISCONNECT, wait for the
// confirmation) until -duration has passed, stops the server with SIGTERM
// and compares the messages confirmed with the lines it printed.
func runSoak(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	bin := fs.String("bin", "lanmsg", "the lanmsg binary to run (path, or name on PATH)")
	duration := fs.Duration("duration", 10*time.Second, "how long the clients run")
	clients := fs.Int("clients", 50, "concurrent clients")
	size := fs.Int("size", 64, "message size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *size < 1 || *duration <= 0 {
		return errors.New("-clients, -size and -duration must be positive")
	}
	dir, err := os.MkdirTemp("", "lanmsg-soak-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := startServer(*bin, filepath.Join(dir, "out"), "--max-sessions", fmt.Sprint(*clients+16), "--max-sessions-per-host", fmt.Sprint(*clients+16))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = srv.Stop()
		}
	}()
	fmt.Printf("soak: %d clients, %d-byte messages, %v, server pid %d on %s\n", *clients, *size, *duration, srv.Pid(), srv.Addr)

	start := time.Now()
	deadline := start.Add(*duration)
	stats := make([]soakStats, *clients)
	var peak atomic.Int64 // VmRSS samples, in case VmHWM is unavailable
	var wg sync.WaitGroup
	for i := range stats {
		wg.Go(func() { soakClient(srv.Addr, *size, deadline, uint64(i), &stats[i]) })
	}
	sampleDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := procStatus(srv.Pid(), "VmRSS"); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-tick.C:
			case <-sampleDone:
				return
			}
		}
	}()
	wg.Wait()
	close(sampleDone)
	elapsed := time.Since(start)
	hwm, err := procStatus(srv.Pid(), "VmHWM")
	if err != nil {
		hwm = peak.Load()
	}
	stopTook, stopErr := srv.Stop()
	stopped = true
	received, err := countLines(srv.Out)
	if err != nil {
		return err
	}

	var total soakStats
	for _, s := range stats {
		total.sessions += s.sessions
		total.messages += s.messages
		total.failed += s.failed
		if s.lastError != nil {
			total.lastError = s.lastError
		}
	}
	equal := int64(received) == total.messages
	fmt.Printf("duration          %v\n", elapsed.Round(time.Millisecond))
	fmt.Printf("sessions          %d confirmed, %d failed\n", total.sessions, total.failed)
	fmt.Printf("messages sent     %d (confirmed), %.0f/s\n", total.messages, float64(total.messages)/elapsed.Seconds())
	fmt.Printf("messages received %d (lines of output)\n", received)
	fmt.Printf("equal             %v\n", equal)
	fmt.Printf("peak RSS          %.1f MiB (VmHWM)\n", float64(hwm)/(1<<20))
	fmt.Printf("server stop       %v after SIGTERM (%v)\n", stopTook.Round(time.Millisecond), exitText(stopErr))

	var errs []error
	if !equal {
		errs = append(errs, fmt.Errorf("%d messages confirmed but %d received", total.messages, received))
	}
	if total.failed > 0 {
		errs = append(errs, fmt.Errorf("%d sessions not confirmed (last: %v)", total.failed, total.lastError))
	}
	if stopErr != nil {
		errs = append(errs, fmt.Errorf("server exit: %v\n%s", stopErr, lastLines(srv.Log.String(), 10)))
	}
	return errors.Join(errs...)
}

// soakClient runs sessions until deadline.
func soakClient(addr string, size int, deadline time.Time, seed uint64, st *soakStats) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	msg := []byte(strings.Repeat("s", size))
	var buf []byte
	for time.Now().Before(deadline) {
		n := 1 + rng.IntN(1000)
		buf = buf[:0]
		for range n {
			buf = transport.AppendFrame(buf, msg)
		}
		buf = transport.AppendFrame(buf, []byte(transport.Disconnect))
		if err := soakSession(addr, buf); err != nil {
			st.failed++
			st.lastError = err
			continue
		}
		st.sessions++
		st.messages += int64(n)
	}
}

// soakSession sends one session's frames and waits for the server to close
// the connection normally: the confirmation.
func soakSession(addr string, frames []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(frames); err != nil {
		return err
	}
	var b [512]byte
	for {
		_, err := c.Read(b[:])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not confirmed: %w", err)
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
