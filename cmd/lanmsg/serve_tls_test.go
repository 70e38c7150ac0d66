package main

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/trust"
)

// serve advertises its key (fp), TLS (tls=1) and an id derived from the
// key, the port and the hostname, so two serves sharing a config dir
// advertise distinct ids.
func TestServeAdvertisesKeyAndTLS(t *testing.T) {
	dir := t.TempDir()
	l := &fakeLAN{}
	addr1, stop1 := serveInProcessDir(t, l, serveCmd{Listen: "0.0.0.0:0", Name: "kitchen", AdvertiseAddr: []string{"198.18.0.11"}}, dir)
	addr2, stop2 := serveInProcessDir(t, l, serveCmd{Listen: "0.0.0.0:0", Name: "kitchen2", AdvertiseAddr: []string{"198.18.0.11"}}, dir)
	for _, stop := range []func() (string, error){stop1, stop2} {
		if log, err := stop(); err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
	}
	id, err := trust.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.advertised) != 2 {
		t.Fatalf("advertised %d times", len(l.advertised))
	}
	ids := map[string]bool{}
	for _, addr := range []string{addr1, addr2} {
		_, ps, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(ps)
		// The two advertise concurrently: find this one's by its port.
		i := slices.IndexFunc(l.advertised, func(c discovery.AdvertiseConfig) bool { return c.Port == port })
		if i < 0 {
			t.Fatalf("nothing advertised for port %d", port)
		}
		a := l.advertised[i]
		if a.TXT[fpTXT] != id.Fingerprint.String() || a.TXT[tlsTXT] != "1" {
			t.Errorf("TXT %v: want fp=%s tls=1", a.TXT, id.Fingerprint)
		}
		if want := serverID(id.Fingerprint, port); a.TXT[idTXT] != want {
			t.Errorf("TXT id %q, want %q (from key, port and hostname)", a.TXT[idTXT], want)
		}
		ids[a.TXT[idTXT]] = true
	}
	if len(ids) != 2 {
		t.Errorf("two serves sharing one config dir advertised the same id %v", ids)
	}
}

// serve takes TLS sessions, with its config dir's key, and plain ones on
// the same port; --tls-only refuses plain ones.
func TestServeTLSSamePort(t *testing.T) {
	for _, tlsOnly := range []bool{false, true} {
		dir := t.TempDir()
		l := &fakeLAN{}
		addr, stop := serveInProcessDir(t, l, serveCmd{Listen: "127.0.0.1:0", TLSOnly: tlsOnly}, dir)
		srvID, err := trust.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		me, err := trust.Load(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := me.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := session.Dial(context.Background(), addr, session.ClientConfig{TLS: trust.ClientConfig(&cert, trust.Expect(srvID.Fingerprint))})
		if err != nil {
			t.Fatalf("TLS with serve (tls-only %v): %v", tlsOnly, err)
		}
		if err := cl.Send([]byte("secret")); err != nil {
			t.Fatal(err)
		}
		if err := cl.Close(); err != nil {
			t.Fatalf("TLS session not confirmed: %v", err)
		}
		plain, err := session.Dial(context.Background(), addr, session.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := plain.Send([]byte("clear")); err != nil {
			t.Fatal(err)
		}
		err = plain.Close()
		if tlsOnly && err == nil {
			t.Errorf("--tls-only confirmed a plain session")
		}
		if !tlsOnly && err != nil {
			t.Errorf("plain session on a TLS-capable serve: %v", err)
		}
		log, err := stop()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, me.Fingerprint.String()) {
			t.Errorf("serve's log does not name the TLS client's key %s", me.Fingerprint)
		}
		if tlsOnly && !strings.Contains(log, "--tls-only") {
			t.Errorf("refusal not logged:\n%s", log)
		}
	}
}

// serve --name goes through the name policy: a name that hides or reorders
// text is refused, spaces are made plain.
func TestServeNamePolicy(t *testing.T) {
	for _, bad := range []string{"kitchen\u202e", "kit\u200bchen", "tab\there", strings.Repeat("k", 64)} {
		code, _, stderr := runFake(t, &fakeLAN{}, "", "--config-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--name", bad)
		if code != exitUsage || !strings.Contains(stderr, "lanmsg: error: --name") || !strings.Contains(stderr, "lanmsg: hint:") {
			t.Errorf("--name %+q: exit %d:\n%s", bad, code, stderr)
		}
	}
	l := &fakeLAN{}
	_, stop := serveInProcess(t, l, serveCmd{Listen: "0.0.0.0:0", Name: "  the   kitchen ", AdvertiseAddr: []string{"198.18.0.11"}})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(l.advertised) != 1 || l.advertised[0].Instance != "the kitchen" {
		t.Errorf("advertised %+v, want the name \"the kitchen\"", l.advertised)
	}
}
