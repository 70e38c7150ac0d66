package session

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/trust"
)

// tlsPair is a server identity and a client identity, each in its own dir.
type tlsPair struct {
	server, client *trust.Identity
	serverCert     tls.Certificate
	clientCert     tls.Certificate
}

func newTLSPair(t *testing.T) *tlsPair {
	t.Helper()
	p := &tlsPair{}
	var err error
	if p.server, err = trust.Load(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if p.client, err = trust.Load(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if p.serverCert, err = p.server.Certificate(); err != nil {
		t.Fatal(err)
	}
	if p.clientCert, err = p.client.Certificate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *tlsPair) serverConfig(cfg Config) Config {
	cfg.TLS = trust.ServerConfig(p.serverCert, nil)
	return cfg
}

func (p *tlsPair) clientConfig() *tls.Config {
	return trust.ClientConfig(&p.clientCert, trust.Expect(p.server.Fingerprint))
}

func TestTLSSessionDeliversAndConfirms(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{}), Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cl.TLS(); !ok {
		t.Fatal("client session is not TLS")
	}
	peer := cl.nc.LocalAddr().String()
	if err := cl.Send([]byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	ts.waitMessages(t, peer, 1)
	infos := ts.srv.Sessions()
	if len(infos) != 1 || !infos[0].TLS || infos[0].ClientKey != p.client.Fingerprint.String() {
		t.Fatalf("Sessions() = %+v; want one TLS session with client key %s", infos, p.client.Fingerprint)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("Close (confirmation over TLS): %v", err)
	}
	if got, want := ts.out.Lines(), []string{textLine(peer, "over tls")}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestTLSServerStillTakesPlainSessions(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{}), Text, nil)
	c := dialRaw(t, ts.addr)
	peer := c.LocalAddr().String()
	mustWrite(t, c, append(frame("plain hello"), frame("!DISCONNECT")...))
	expectEOF(t, c)
	if got, want := ts.out.String(), textLine(peer, "plain hello")+"\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestTLSExtendedSessionGetsReceipts(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{}), Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig(), Hello: &Hello{}})
	if err != nil {
		t.Fatal(err)
	}
	if !cl.Extended() {
		t.Fatal("not extended")
	}
	for i := 0; i < 3; i++ {
		if err := cl.Send([]byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if cl.Acked() != 3 {
		t.Fatalf("acked %d of 3", cl.Acked())
	}
}

func TestTLSOnlyRefusesPlain(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{TLSOnly: true}), Text, nil)
	for i := 0; i < 3; i++ {
		c := dialRaw(t, ts.addr)
		mustWrite(t, c, append(frame("in clear"), frame("!DISCONNECT")...))
		expectReset(t, c, 5*time.Second)
	}
	ts.log.Wait(t, 5*time.Second, 3, reasonPlainRefused)
	if n := ts.log.Count("plain (unencrypted) session on a --tls-only server"); n != 1 {
		t.Errorf("refusal logged %d times for 3 refusals within a second; want 1 (rate-limited)", n)
	}
	if out := ts.out.String(); out != "" {
		t.Fatalf("a refused plain session wrote %q", out)
	}
	// TLS still works.
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Send([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSOnlyNeedsTLS(t *testing.T) {
	if err := (Config{TLSOnly: true}).Validate(); err == nil {
		t.Fatal("TLSOnly without TLS validated")
	}
}

// A client that starts a handshake and stalls holds its slot for the header
// timeout, not the idle timeout.
func TestTLSStalledHandshakeBoundedByHeaderTimeout(t *testing.T) {
	p := newTLSPair(t)
	const header = 300 * time.Millisecond
	ts := startServer(t, p.serverConfig(Config{HeaderTimeout: header, IdleTimeout: time.Minute, ReadTimeout: time.Minute}), Text, nil)
	c := dialRaw(t, ts.addr)
	mustWrite(t, c, []byte{0x16, 0x03, 0x01}) // a handshake record begins, and stops
	d := expectReset(t, c, 10*time.Second)
	t.Logf("stalled handshake reset after %v (header timeout %v, idle timeout 1m)", d, header)
	if d < header/2 || d > 5*time.Second {
		t.Fatalf("reset after %v; want about the header timeout %v", d, header)
	}
	ts.log.Wait(t, 5*time.Second, 1, reasonHandshake)
	ts.waitSessions(t, 0)
}

func TestTLSWrongServerKeyFailsWithoutFallback(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{}), Text, nil)
	other, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), ts.addr, ClientConfig{TLS: trust.ClientConfig(&p.clientCert, trust.Expect(other.Fingerprint))})
	if !errors.Is(err, trust.ErrKeyMismatch) {
		t.Fatalf("Dial with the wrong expected key: %v; want ErrKeyMismatch", err)
	}
	if errors.Is(err, ErrNoTLS) {
		t.Fatalf("a TLS server that failed the key check was taken for one without TLS: %v", err)
	}
}

func TestTLSToPlainServerIsErrNoTLS(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, Config{}, Text, nil) // no TLS
	_, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig()})
	if !errors.Is(err, ErrNoTLS) {
		t.Fatalf("TLS to a plain-only server: %v; want ErrNoTLS", err)
	}
	if out := ts.out.String(); out != "" {
		t.Fatalf("the ClientHello became output: %q", out)
	}
}

// Limits apply to TLS sessions: the per-host cap and the minimum rate.
func TestTLSSessionsHeldToLimits(t *testing.T) {
	p := newTLSPair(t)
	ts := startServer(t, p.serverConfig(Config{MaxSessionsPerHost: 1, MinRate: 1000, MinRateWindow: time.Second}), Text, nil)
	cl, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Abort()
	if _, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig()}); err == nil {
		t.Fatal("a second TLS session from one host passed a per-host cap of 1")
	}
	// The first session starts a 100 kB frame and sends 10 bytes of it.
	if _, err := cl.nc.Write(append(header(100000), "0123456789"...)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ts.log.Wait(t, 5*time.Second, 1, reasonTooSlow)
	t.Logf("TLS session sending 10 bytes of a frame in a 1s window at --min-rate 1000 B/s: reset after %v", time.Since(start))
}

// A client the server refuses (an allow list) learns why from the alert,
// and nothing it sent is written.
func TestTLSRefusedClientReadsAlert(t *testing.T) {
	p := newTLSPair(t)
	cfg := Config{HeaderTimeout: 2 * time.Second}
	cfg.TLS = trust.ServerConfig(p.serverCert, func(trust.Fingerprint, bool) error { return trust.ErrNotAllowed })
	ts := startServer(t, cfg, Text, nil)
	start := time.Now()
	_, err := Dial(context.Background(), ts.addr, ClientConfig{TLS: p.clientConfig(), Hello: &Hello{}})
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("refused client: %v; want the alert (bad certificate)", err)
	}
	learned := time.Since(start)
	ts.log.Wait(t, 5*time.Second, 1, reasonHandshake)
	t.Logf("refused client learned why after %v; its session ended after %v (bound: the header timeout, 2s)", learned, time.Since(start))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a refused session lasted %v, over the header timeout", d)
	}
	if out := ts.out.String(); out != "" {
		t.Fatalf("a refused client's frames were written: %q", out)
	}
}
