package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/rooms"
)

// relayBench is one chat room on a loopback server: a sender and receivers
// that count the messages they get.
type relayBench struct {
	srv    *Server
	sender *Client
	recv   []*Client
	counts []atomic.Int64
	// reached[i] is closed when receiver i has counted target messages.
	reached []chan struct{}
	target  int64

	// progress wakes a pacing sender: receivers broadcast on it every
	// progressEvery messages and when they reach the target.
	mu       sync.Mutex
	progress *sync.Cond
}

const progressEvery = 64

func startRelayBench(b *testing.B, cfg Config, receivers int, target int64) *relayBench {
	b.Helper()
	nop := zerolog.Nop()
	srv, err := NewServer(cfg, io.Discard, Text, &nop)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	rb := &relayBench{srv: srv, counts: make([]atomic.Int64, receivers), target: target}
	rb.progress = sync.NewCond(&rb.mu)
	b.Cleanup(func() {
		for _, cl := range append(rb.recv, rb.sender) {
			if cl != nil {
				_ = cl.Abort()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		<-served
	})
	addr := ln.Addr().String()
	for i := range receivers {
		reached := make(chan struct{})
		rb.reached = append(rb.reached, reached)
		count := &rb.counts[i]
		cl, err := Dial(context.Background(), addr, ClientConfig{
			Hello: &Hello{Name: fmt.Sprintf("r%02d", i), Chat: true},
			OnEvent: func(ev Event) {
				if ev.Type != EventMessage {
					return
				}
				n := count.Add(1)
				if n == target {
					close(reached)
				}
				if n%progressEvery == 0 || n == target {
					rb.mu.Lock()
					rb.progress.Broadcast()
					rb.mu.Unlock()
				}
			},
		})
		if err != nil {
			b.Fatalf("receiver %d: %v", i, err)
		}
		rb.recv = append(rb.recv, cl)
	}
	rb.sender, err = Dial(context.Background(), addr, ClientConfig{Hello: &Hello{Name: "sender", Chat: true}})
	if err != nil {
		b.Fatalf("sender: %v", err)
	}
	return rb
}

// slowest returns the smallest receiver count.
func (rb *relayBench) slowest() int64 {
	low := rb.target
	for i := range rb.counts {
		low = min(low, rb.counts[i].Load())
	}
	return low
}

// awaitSlowest waits until every receiver has counted at least n messages,
// or one of them was disconnected.
func (rb *relayBench) awaitSlowest(n int64) bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for rb.slowest() < n {
		if rb.dropped() > 0 {
			return false
		}
		rb.progress.Wait()
	}
	return true
}

// dropped counts the receivers whose connection ended.
func (rb *relayBench) dropped() int {
	n := 0
	for _, cl := range rb.recv {
		select {
		case <-cl.Done():
			n++
		default:
		}
	}
	return n
}

// runRelay sends b.N messages of 32 bytes to the room and waits until every
// receiver has them all. With window > 0 the sender keeps at most window
// messages ahead of the slowest receiver; with 0 it sends as fast as it can.
// It reports the receivers dropped for a full send queue.
func runRelay(b *testing.B, cfg Config, receivers, window int) {
	rb := startRelayBench(b, cfg, receivers, int64(b.N))
	// A dropped receiver never reaches the target: wake the pacing sender
	// and the final wait when one goes.
	anyDropped := make(chan struct{})
	var dropOnce sync.Once
	for _, cl := range rb.recv {
		go func() {
			<-cl.Done()
			dropOnce.Do(func() { close(anyDropped) })
			rb.mu.Lock()
			rb.progress.Broadcast()
			rb.mu.Unlock()
		}()
	}
	msg := make([]byte, 0, 32)
	b.SetBytes(32)
	b.ResetTimer()
	start := time.Now()
	ok := true
	for i := 1; i <= b.N && ok; i++ {
		msg = fmt.Appendf(msg[:0], "%032d", i)
		if err := rb.sender.Send(msg); err != nil {
			b.Fatalf("Send %d: %v", i, err)
		}
		if window > 0 && i%(window/4) == 0 {
			if err := rb.sender.Flush(); err != nil {
				b.Fatalf("Flush: %v", err)
			}
			ok = rb.awaitSlowest(int64(i - window))
		}
	}
	if err := rb.sender.Flush(); err != nil {
		b.Fatalf("Flush: %v", err)
	}
	for i, reached := range rb.reached {
		select {
		case <-reached:
		case <-anyDropped:
		case <-time.After(time.Minute):
			b.Fatalf("receiver %d has %d of %d messages after a minute", i, rb.counts[i].Load(), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := rb.dropped(); n > 0 {
		// The design drops a participant whose send queue overflows, and a
		// sender faster than the receivers' writers overflows it even when
		// every receiver reads as fast as it can.
		b.ReportMetric(float64(n), "dropped")
		b.Logf("N=%d: %d of %d receivers dropped (send queue %d bytes), the slowest had %d messages",
			b.N, n, receivers, rb.srv.Config().SendQueue, rb.slowest())
		return
	}
	b.ReportMetric(0, "dropped")
	b.ReportMetric(float64(b.N*receivers)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkRelayFanout: one sender, 49 listening participants, default send
// queue. The sender paces itself (at most 512 messages ahead of the slowest
// receiver, half the queue), so no participant can be dropped.
func BenchmarkRelayFanout(b *testing.B) {
	runRelay(b, Config{}, 49, 512)
}

// BenchmarkRelayFanoutUnpaced: the same room with a sender that does not
// wait for anyone. It measures whether the default send queue absorbs a
// sender that is faster than the relay; "dropped" > 0 says it does not.
func BenchmarkRelayFanoutUnpaced(b *testing.B) {
	runRelay(b, Config{}, 49, 0)
}

// BenchmarkRelayFanoutBus: BenchmarkRelayFanout with the room on the
// message bus, history on: each message is stored in the room's stream and
// relayed from its one subscription.
func BenchmarkRelayFanoutBus(b *testing.B) {
	runRelay(b, Config{Bus: benchBus(b)}, 49, 512)
}

// BenchmarkRoomSustained: one sender and one listener in a room with
// history on, the sender paced only by the listener: messages stored and
// relayed per second.
func BenchmarkRoomSustained(b *testing.B) {
	runRelay(b, Config{Bus: benchBus(b)}, 1, 4096)
}

func benchBus(b *testing.B) *rooms.Bus {
	nop := zerolog.Nop()
	bus, err := rooms.Start(rooms.Config{DataDir: b.TempDir(), Site: "0123456789abcdef", Log: &nop})
	if err != nil {
		b.Fatal(err)
	}
	if err := bus.Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bus.Close() })
	return bus
}

// BenchmarkNATSCoreFanout is the reference for BenchmarkRelayFanout: a
// nats-server (listening on loopback, as a standalone one would) fanning
// out core pub/sub messages of 32 bytes from one publisher to 49
// subscribers, each on its own TCP connection, paced like the relay (at
// most 512 messages ahead of the slowest subscriber).
func BenchmarkNATSCoreFanout(b *testing.B) {
	const receivers, window = 49, 512
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		b.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	counts := make([]atomic.Int64, receivers)
	target := int64(b.N)
	var mu sync.Mutex
	progress := sync.NewCond(&mu)
	reached := make(chan struct{}, receivers)
	for i := range receivers {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		count := &counts[i]
		if _, err := nc.Subscribe("room", func(*nats.Msg) {
			n := count.Add(1)
			if n == target {
				reached <- struct{}{}
			}
			if n%progressEvery == 0 || n == target {
				mu.Lock()
				progress.Broadcast()
				mu.Unlock()
			}
		}); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	pub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pub.Close)
	slowest := func() int64 {
		low := target
		for i := range counts {
			low = min(low, counts[i].Load())
		}
		return low
	}
	msg := make([]byte, 0, 32)
	b.SetBytes(32)
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= b.N; i++ {
		msg = fmt.Appendf(msg[:0], "%032d", i)
		if err := pub.Publish("room", msg); err != nil {
			b.Fatal(err)
		}
		if i%(window/4) == 0 {
			if err := pub.Flush(); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			for slowest() < int64(i-window) {
				progress.Wait()
			}
			mu.Unlock()
		}
	}
	if err := pub.Flush(); err != nil {
		b.Fatal(err)
	}
	for range receivers {
		select {
		case <-reached:
		case <-time.After(time.Minute):
			b.Fatalf("the slowest subscriber has %d of %d messages after a minute", slowest(), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*receivers)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
