package session

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/trust"
)

// benchServer is a server with TLS on 127.0.0.1:0 writing to io.Discard.
func benchServer(b *testing.B, p *tlsPair) (addr string, srv *Server) {
	b.Helper()
	nop := zerolog.Nop()
	srv, err := NewServer(p.serverConfig(Config{}), io.Discard, Text, &nop)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), srv
}

func newBenchPair(b *testing.B) *tlsPair {
	b.Helper()
	p := &tlsPair{}
	var err error
	if p.server, err = trust.Load(b.TempDir()); err != nil {
		b.Fatal(err)
	}
	if p.client, err = trust.Load(b.TempDir()); err != nil {
		b.Fatal(err)
	}
	if p.serverCert, err = p.server.Certificate(); err != nil {
		b.Fatal(err)
	}
	if p.clientCert, err = p.client.Certificate(); err != nil {
		b.Fatal(err)
	}
	return p
}

// sendMany opens one session (TLS if tcfg is set), sends n messages of msg,
// and waits for the confirmation; it returns how long that took.
func sendMany(b *testing.B, addr string, tcfg *tls.Config, msg []byte, n int) time.Duration {
	b.Helper()
	start := time.Now()
	cl, err := Dial(context.Background(), addr, ClientConfig{TLS: tcfg})
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		if err := cl.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := cl.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkTLSThroughputRatio streams messages of 32 B and 4 KiB over one
// session, plain and TLS alternately against the same server, and reports
// TLS throughput as a ratio to plain measured in the same run. Targets
// (issue 10): at least 0.6 for 32 B and 0.5 for 4 KiB; it fails below.
func BenchmarkTLSThroughputRatio(b *testing.B) {
	for _, tc := range []struct {
		name  string
		size  int
		n     int
		floor float64
	}{{"32B", 32, 300000, 0.6}, {"4KiB", 4096, 50000, 0.5}} {
		b.Run(tc.name, func(b *testing.B) {
			p := newBenchPair(b)
			addr, _ := benchServer(b, p)
			msg := make([]byte, tc.size)
			for i := range msg {
				msg[i] = 'a' + byte(i%26)
			}
			var plain, secure []time.Duration
			var plainCPU, secureCPU time.Duration
			b.ResetTimer()
			for range b.N {
				cpu0 := processCPU()
				plain = append(plain, sendMany(b, addr, nil, msg, tc.n))
				cpu1 := processCPU()
				secure = append(secure, sendMany(b, addr, p.clientConfig(), msg, tc.n))
				plainCPU, secureCPU = plainCPU+cpu1-cpu0, secureCPU+processCPU()-cpu1
			}
			b.StopTimer()
			pm, sm := median(plain), median(secure)
			ratio := pm.Seconds() / sm.Seconds()
			bytes := float64(tc.size * tc.n)
			b.ReportMetric(bytes/pm.Seconds()/1e6, "plain-MB/s")
			b.ReportMetric(bytes/sm.Seconds()/1e6, "tls-MB/s")
			b.ReportMetric(ratio, "tls/plain")
			// The same ratio in CPU time (client and server together):
			// what a machine whose other work takes turns with the
			// benchmark's leaves of the comparison.
			if secureCPU > 0 {
				b.ReportMetric(plainCPU.Seconds()/secureCPU.Seconds(), "tls/plain-cpu")
			}
			if ratio < tc.floor {
				b.Errorf("TLS throughput is %.2f of plain for %s messages (plain %v, TLS %v for %d; in CPU time %.2f: plain %v, TLS %v), under the %.1f target",
					ratio, tc.name, pm, sm, tc.n, plainCPU.Seconds()/secureCPU.Seconds(), plainCPU, secureCPU, tc.floor)
			}
		})
	}
}

// BenchmarkTLSOneShot times a one-message session (connect, handshake with
// a fresh client configuration as each lanmsg send process makes, send,
// confirmation), plain and TLS alternately, and reports TLS as a multiple of
// plain measured in the same run. The 2× target of issue 10 is for the
// whole lanmsg send process: cmd/lanmsg's BenchmarkOneShotSend.
func BenchmarkTLSOneShot(b *testing.B) {
	p := newBenchPair(b)
	addr, _ := benchServer(b, p)
	var plain, secure []time.Duration
	msg := []byte("hello")
	b.ResetTimer()
	for range b.N {
		plain = append(plain, sendMany(b, addr, nil, msg, 1))
		cert, err := p.client.Certificate()
		if err != nil {
			b.Fatal(err)
		}
		secure = append(secure, sendMany(b, addr, trust.ClientConfig(&cert, trust.Expect(p.server.Fingerprint)), msg, 1))
	}
	b.StopTimer()
	pm, sm := median(plain), median(secure)
	b.ReportMetric(float64(pm.Microseconds()), "plain-µs")
	b.ReportMetric(float64(sm.Microseconds()), "tls-µs")
	b.ReportMetric(sm.Seconds()/pm.Seconds(), "tls/plain")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
