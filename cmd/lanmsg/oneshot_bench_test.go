package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/trust"
)

// benchBinary is this test binary linked under the name lanmsg, which
// TestMain runs as the lanmsg command.
func benchBinary(b *testing.B) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(b.TempDir(), "lanmsg")
	if err := os.Link(exe, dst); err != nil {
		b.Skipf("cannot link the test binary as lanmsg: %v", err)
	}
	return dst
}

// BenchmarkOneShotSend times whole 'lanmsg send --server ADDR hello'
// processes against a TLS-capable server, over TLS (the key pinned by a
// first run) and plain (the same binary with TLS skipped), alternately, and
// reports TLS as a multiple of plain in the same run. Target (issue 10):
// within 2×; it fails above.
func BenchmarkOneShotSend(b *testing.B) {
	bin := benchBinary(b)
	id, err := trust.Load(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		b.Fatal(err)
	}
	nop := zerolog.Nop()
	srv, err := session.NewServer(session.Config{TLS: trust.ServerConfig(cert, nil)}, &bytes.Buffer{}, session.Text, &nop)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	dir := b.TempDir()
	run := func(plain bool) time.Duration {
		cmd := exec.Command(bin, "--config-dir", dir, "send", "--server", ln.Addr().String(), "hello")
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir)
		if plain {
			cmd.Env = append(cmd.Env, "LANMSG_TEST_PLAIN_CLIENT=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("send (plain %v): %v: %s", plain, err, stderr.String())
		}
		return time.Since(start)
	}
	run(false) // first contact: makes the key, pins the server's
	var plain, secure []time.Duration
	b.ResetTimer()
	for range b.N {
		plain = append(plain, run(true))
		secure = append(secure, run(false))
	}
	b.StopTimer()
	pm, sm := medianOf(plain), medianOf(secure)
	b.ReportMetric(float64(pm.Microseconds())/1000, "plain-ms")
	b.ReportMetric(float64(sm.Microseconds())/1000, "tls-ms")
	b.ReportMetric(sm.Seconds()/pm.Seconds(), "tls/plain")
	if sm > 2*pm {
		b.Errorf("a one-shot TLS send takes %v (median of %d), over 2× the plain one's %v", sm, b.N, pm)
	}
}

func medianOf(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
