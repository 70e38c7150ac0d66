package trust

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
)

// BenchmarkHandshake is one TLS 1.3 handshake over loopback TCP, with a
// client certificate and the server's key checked by fingerprint: what
// each TLS session adds before its first message.
func BenchmarkHandshake(b *testing.B) {
	srvID, srvCert := newIdentity(b)
	_, cliCert := newIdentity(b)
	scfg := ServerConfig(srvCert, func(Fingerprint, bool) error { return nil })
	ccfg := ClientConfig(&cliCert, Expect(srvID.Fingerprint))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s := tls.Server(c, scfg)
				_ = s.Handshake()
				_ = c.Close()
			}()
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(c, ccfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
}

// BenchmarkLoad reads an existing key: what every command pays at start.
func BenchmarkLoad(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "lanmsg")
	if _, err := Load(dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCertificate makes the self-signed certificate, once per start.
func BenchmarkCertificate(b *testing.B) {
	id, _ := newIdentity(b)
	for b.Loop() {
		if _, err := id.Certificate(); err != nil {
			b.Fatal(err)
		}
	}
}
