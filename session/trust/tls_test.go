package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func newIdentity(t testing.TB) (*Identity, tls.Certificate) {
	t.Helper()
	id, err := Load(filepath.Join(t.TempDir(), "lanmsg"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return id, cert
}

// result is one side's view of a handshake.
type result struct {
	err  error
	peer Fingerprint
	ok   bool // a peer certificate was seen
	vers uint16
}

// handshake runs a TLS handshake over conns (client end, server end) and
// exchanges one line each way, returning both sides' results.
func handshake(t *testing.T, cli, srv net.Conn, ccfg, scfg *tls.Config) (client, server result) {
	t.Helper()
	_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan result, 1)
	go func() {
		defer srv.Close()
		s := tls.Server(srv, scfg)
		var r result
		if r.err = s.Handshake(); r.err == nil {
			cs := s.ConnectionState()
			r.peer, r.ok = PeerFingerprint(cs)
			r.vers = cs.Version
			buf := make([]byte, 5)
			if _, r.err = io.ReadFull(s, buf); r.err == nil {
				_, r.err = s.Write([]byte("pong\n"))
			}
		}
		done <- r
	}()
	defer cli.Close()
	c := tls.Client(cli, ccfg)
	if client.err = c.Handshake(); client.err == nil {
		cs := c.ConnectionState()
		client.peer, client.ok = PeerFingerprint(cs)
		client.vers = cs.Version
		if _, client.err = c.Write([]byte("ping\n")); client.err == nil {
			buf := make([]byte, 5)
			_, client.err = io.ReadFull(c, buf)
		}
	}
	if client.err != nil {
		cli.Close() // let the server side end
	}
	return client, <-done
}

// tcpPair is a connected pair over loopback TCP. Tests of refused
// handshakes use it rather than net.Pipe, whose unbuffered writes deadlock
// a side that stops reading mid-flight to send its alert.
func tcpPair(t *testing.T) (net.Conn, net.Conn) { return transports(t)["tcp"]() }

// transports gives a connected pair over net.Pipe and over loopback TCP.
func transports(t *testing.T) map[string]func() (net.Conn, net.Conn) {
	return map[string]func() (net.Conn, net.Conn){
		"pipe": func() (net.Conn, net.Conn) { return net.Pipe() },
		"tcp": func() (net.Conn, net.Conn) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			acc := make(chan net.Conn, 1)
			go func() { c, _ := ln.Accept(); acc <- c }()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s := <-acc
			if s == nil {
				t.Fatal("accept failed")
			}
			return c, s
		},
	}
}

func TestTLSHandshakeChecksServerKeyAndSeesClientKey(t *testing.T) {
	srvID, srvCert := newIdentity(t)
	cliID, cliCert := newIdentity(t)
	for name, pair := range transports(t) {
		t.Run(name, func(t *testing.T) {
			cli, srv := pair()
			c, s := handshake(t, cli, srv, ClientConfig(&cliCert, Expect(srvID.Fingerprint)), ServerConfig(srvCert, nil))
			if c.err != nil || s.err != nil {
				t.Fatalf("client: %v; server: %v", c.err, s.err)
			}
			if c.vers != tls.VersionTLS13 {
				t.Errorf("version %x, want TLS 1.3", c.vers)
			}
			if !c.ok || c.peer != srvID.Fingerprint {
				t.Errorf("client saw server key %v, want %v", c.peer, srvID.Fingerprint)
			}
			if !s.ok || s.peer != cliID.Fingerprint {
				t.Errorf("server saw client key %v (%v), want %v", s.peer, s.ok, cliID.Fingerprint)
			}
		})
	}
}

func TestTLSClientRejectsWrongServerKey(t *testing.T) {
	pinned, _ := newIdentity(t)
	_, impostorCert := newIdentity(t)
	_, cliCert := newIdentity(t)
	cli, srv := tcpPair(t)
	c, s := handshake(t, cli, srv, ClientConfig(&cliCert, Expect(pinned.Fingerprint)), ServerConfig(impostorCert, nil))
	var me *KeyMismatchError
	if !errors.As(c.err, &me) || !errors.Is(c.err, ErrKeyMismatch) {
		t.Fatalf("client: %v, want a *KeyMismatchError", c.err)
	}
	if me.Want != pinned.Fingerprint || me.Got != FingerprintOfCert(impostorCert.Leaf) {
		t.Errorf("mismatch %v / %v", me.Want, me.Got)
	}
	if s.err == nil {
		t.Error("the impostor server completed the exchange")
	}
}

// An impostor that replays the real server's certificate, without its key,
// cannot complete the handshake: TLS checks the signature over the
// handshake with the certificate's key before VerifyConnection runs.
func TestTLSClientRejectsStolenCertificateWithoutItsKey(t *testing.T) {
	real, realCert := newIdentity(t)
	_, wrongKey, _ := ed25519.GenerateKey(rand.Reader)
	stolen := tls.Certificate{Certificate: realCert.Certificate, PrivateKey: wrongKey}
	cli, srv := tcpPair(t)
	c, _ := handshake(t, cli, srv, ClientConfig(nil, Expect(real.Fingerprint)), ServerConfig(stolen, nil))
	if c.err == nil {
		t.Fatal("the client accepted a certificate whose key the server does not hold")
	}
	if errors.Is(c.err, ErrKeyMismatch) {
		t.Fatalf("refused for its key (%v), but the key is the pinned one: the signature check should refuse it", c.err)
	}
}

func TestTLSClientNeverAcceptsUnchecked(t *testing.T) {
	_, srvCert := newIdentity(t)
	cli, srv := tcpPair(t)
	c, _ := handshake(t, cli, srv, ClientConfig(nil, nil), ServerConfig(srvCert, nil))
	if c.err == nil {
		t.Fatal("a client config without a check accepted the server")
	}
}

func TestTLSServerWithoutClientCertificate(t *testing.T) {
	srvID, srvCert := newIdentity(t)
	var called, sawKey bool
	verify := func(fp Fingerprint, ok bool) error { called, sawKey = true, ok; return nil }
	cli, srv := net.Pipe()
	c, s := handshake(t, cli, srv, ClientConfig(nil, Expect(srvID.Fingerprint)), ServerConfig(srvCert, verify))
	if c.err != nil || s.err != nil {
		t.Fatalf("client: %v; server: %v", c.err, s.err)
	}
	if s.ok || !called || sawKey {
		t.Errorf("server: key seen %v, verify called %v with ok %v; want no key", s.ok, called, sawKey)
	}
}

func TestTLSServerAllowList(t *testing.T) {
	srvID, srvCert := newIdentity(t)
	allowedID, allowedCert := newIdentity(t)
	_, otherCert := newIdentity(t)
	allow := &AllowList{keys: map[Fingerprint]struct{}{allowedID.Fingerprint: {}}}
	scfg := ServerConfig(srvCert, allow.VerifyClient)
	ccheck := Expect(srvID.Fingerprint)

	cli, srv := net.Pipe()
	c, s := handshake(t, cli, srv, ClientConfig(&allowedCert, ccheck), scfg)
	if c.err != nil || s.err != nil || s.peer != allowedID.Fingerprint {
		t.Fatalf("allowed key: client %v, server %v", c.err, s.err)
	}
	for name, cert := range map[string]*tls.Certificate{"other key": &otherCert, "no key": nil} {
		cli, srv := tcpPair(t)
		c, s := handshake(t, cli, srv, ClientConfig(cert, ccheck), scfg)
		if !errors.Is(s.err, ErrNotAllowed) {
			t.Errorf("%s: server %v, want ErrNotAllowed", name, s.err)
		}
		if c.err == nil {
			t.Errorf("%s: the client's exchange succeeded", name)
		}
	}
}

func TestIsTLSRecord(t *testing.T) {
	if !IsTLSRecord(0x16) {
		t.Error("0x16 is a TLS handshake record")
	}
	for _, b := range []byte("0123456789 !") {
		if IsTLSRecord(b) {
			t.Errorf("%q starts a tutorial header, not TLS", b)
		}
	}
}
