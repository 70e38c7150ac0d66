package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/session/trust"
)

// tlsServer is an in-process lanmsg server with TLS and its own key.
type tlsServer struct {
	addr string
	id   *trust.Identity
	out  *sessiontest.SyncBuffer
	srv  *session.Server
	done chan struct{}
}

// startTLSServer starts a server with a new key on addr ("127.0.0.1:0" for
// any port).
func startTLSServer(t *testing.T, addr string) *tlsServer {
	t.Helper()
	id, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return startTLSServerWith(t, addr, id)
}

func startTLSServerWith(t *testing.T, addr string, id *trust.Identity) *tlsServer {
	t.Helper()
	return startTLSServerOn(t, addr, id, nil)
}

// startTLSServerCfg starts a server on 127.0.0.1:0 with key id and client
// check verify.
func startTLSServerCfg(t *testing.T, id *trust.Identity, verify func(trust.Fingerprint, bool) error) *tlsServer {
	t.Helper()
	return startTLSServerOn(t, "127.0.0.1:0", id, verify)
}

func startTLSServerOn(t *testing.T, addr string, id *trust.Identity, verify func(trust.Fingerprint, bool) error) *tlsServer {
	t.Helper()
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t))
	s := &tlsServer{id: id, out: &sessiontest.SyncBuffer{}, done: make(chan struct{})}
	s.srv, err = session.NewServer(session.Config{TLS: trust.ServerConfig(cert, verify)}, s.out, session.Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

func (s *tlsServer) stop() {
	_ = s.srv.Shutdown(context.Background())
	<-s.done
}

// service is s advertised as name with its key.
func (s *tlsServer) service(t *testing.T, name string) discovery.Service {
	sv := svc(t, name, s.addr)
	sv.TXT[fpTXT], sv.TXT[tlsTXT], sv.TXT[helloTXT] = s.id.Fingerprint.String(), "1", "1"
	return sv
}

func (s *tlsServer) got(msg string) bool { return strings.Contains(s.out.String(), " : "+msg+"\n") }

func knownFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "known_servers"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// send --server pins the key by address on first contact, says so on
// stderr, and later refuses another key at that address (exit 5) until
// 'lanmsg forget HOST:PORT'.
func TestPinByAddress(t *testing.T) {
	dir := t.TempDir()
	real := startTLSServer(t, "127.0.0.1:0")
	code, _, stderr := runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", real.addr, "first")
	if code != 0 || !real.got("first") {
		t.Fatalf("first contact: exit %d, server got %q:\n%s", code, real.out.String(), stderr)
	}
	if !strings.Contains(stderr, "first contact with") || !strings.Contains(stderr, real.id.Fingerprint.String()) || !strings.Contains(stderr, real.id.Fingerprint.ShortCode()) {
		t.Errorf("first contact does not show the key and code:\n%s", stderr)
	}
	if k := knownFile(t, dir); !strings.Contains(k, real.addr+" "+real.id.Fingerprint.String()) {
		t.Errorf("known_servers does not pin %s: %q", real.addr, k)
	}
	if infos := real.srv.Sessions(); len(infos) != 0 {
		t.Fatalf("sessions left: %+v", infos)
	}
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", real.addr, "second")
	if code != 0 || !real.got("second") || strings.Contains(stderr, "first contact") {
		t.Fatalf("second contact: exit %d:\n%s", code, stderr)
	}

	// Another key at the address: refused, nothing delivered.
	addr := real.addr
	real.stop()
	other := startTLSServer(t, addr)
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", addr, "to the wrong key")
	if code != exitIdentity {
		t.Fatalf("another key at a pinned address: exit %d, want %d:\n%s", code, exitIdentity, stderr)
	}
	if other.got("to the wrong key") || other.out.String() != "" {
		t.Fatalf("the other key's server got %q", other.out.String())
	}
	if !strings.Contains(stderr, "lanmsg forget "+addr) || !strings.Contains(stderr, other.id.Fingerprint.String()) {
		t.Errorf("the refusal does not name the key met and how to accept it:\n%s", stderr)
	}

	// Accept the new key.
	code, out, stderr := runFake(t, refusingLAN{}, "", "--config-dir", dir, "forget", addr)
	if code != 0 || !strings.Contains(out, "forgot "+addr) {
		t.Fatalf("forget: exit %d, %q:\n%s", code, out, stderr)
	}
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", addr, "after forget")
	if code != 0 || !other.got("after forget") || !strings.Contains(stderr, "first contact") {
		t.Fatalf("after forget: exit %d:\n%s", code, stderr)
	}
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "forget", "nowhere:1")
	if code != exitUsage || !strings.Contains(stderr, "lanmsg: error: no pinned server") {
		t.Errorf("forget of nothing: exit %d:\n%s", code, stderr)
	}
}

// send --server falls back to the plain protocol only for a server that
// does not speak TLS, and not with --require-tls or a pinned address.
func TestPlainFallback(t *testing.T) {
	dir := t.TempDir()
	addr, out := startServer(t, session.Text) // a server without TLS
	code, _, stderr := runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", addr, "in clear")
	if code != 0 || !strings.Contains(out.String(), " : in clear\n") {
		t.Fatalf("fallback: exit %d, output %q:\n%s", code, out.String(), stderr)
	}
	if strings.Contains(out.String(), "\x16") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("the ClientHello reached the output: %q", out.String())
	}
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--require-tls", "--server", addr, "must not go")
	if code != exitIdentity || strings.Contains(out.String(), "must not go") {
		t.Fatalf("--require-tls with a plain server: exit %d, output %q:\n%s", code, out.String(), stderr)
	}
	// A pinned address that now answers in clear: a downgrade, refused.
	known, err := trust.KnownServersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := known.Add(addr, other.Fingerprint); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runFake(t, refusingLAN{}, "", "--config-dir", dir, "send", "--server", addr, "downgraded")
	if code != exitIdentity || strings.Contains(out.String(), "downgraded") {
		t.Fatalf("pinned address answering in clear: exit %d, output %q:\n%s", code, out.String(), stderr)
	}
}

// send --to NAME: first contact pins; then only the pinned key is used,
// under NAME or another name; an impostor alone fails with exit 5; an
// answer whose TLS key differs from its advertised one gets nothing.
func TestPinByName(t *testing.T) {
	dir := t.TempDir()
	real := startTLSServer(t, "127.0.0.1:0")
	evil := startTLSServer(t, "127.0.0.1:0")
	send := func(l lan, msg string) (int, string) {
		code, _, stderr := runFake(t, l, "", "--config-dir", dir, "send", "--to", "kitchen", "--browse-timeout", "300ms", msg)
		return code, stderr
	}

	code, stderr := send(&fakeLAN{services: []discovery.Service{real.service(t, "kitchen")}}, "m1")
	if code != 0 || !real.got("m1") || !strings.Contains(stderr, "first contact with \"kitchen\"") {
		t.Fatalf("first contact: exit %d:\n%s", code, stderr)
	}

	// The impostor answers first, the real one too: the real one is used.
	code, stderr = send(&fakeLAN{services: []discovery.Service{evil.service(t, "kitchen"), real.service(t, "kitchen")}}, "m2")
	if code != 0 || !real.got("m2") || evil.got("m2") {
		t.Fatalf("impostor and real: exit %d, real %q, impostor %q:\n%s", code, real.out.String(), evil.out.String(), stderr)
	}
	if !strings.Contains(stderr, "impostor") || !strings.Contains(stderr, evil.id.Fingerprint.String()) {
		t.Errorf("no warning about the impostor:\n%s", stderr)
	}

	// The real one renamed because the impostor took the name.
	code, stderr = send(&fakeLAN{services: []discovery.Service{evil.service(t, "kitchen"), real.service(t, "kitchen (2)")}}, "m3")
	if code != 0 || !real.got("m3") || evil.got("m3") {
		t.Fatalf("renamed real: exit %d:\n%s", code, stderr)
	}

	// Only the impostor: exit 5, how to accept a reinstalled server.
	code, stderr = send(&fakeLAN{services: []discovery.Service{evil.service(t, "kitchen")}}, "m4")
	if code != exitIdentity || evil.got("m4") {
		t.Fatalf("impostor alone: exit %d, want %d; impostor got %q:\n%s", code, exitIdentity, evil.out.String(), stderr)
	}
	if !strings.Contains(stderr, "lanmsg forget kitchen") {
		t.Errorf("the refusal does not say how to accept a reinstalled server:\n%s", stderr)
	}
	// A look-alike name (Cyrillic е) is the same pin.
	code, stderr = send(&fakeLAN{services: []discovery.Service{evil.service(t, "kitch\u0435n")}}, "m5")
	if code != exitIdentity || evil.got("m5") {
		t.Fatalf("impostor under a look-alike name: exit %d:\n%s", code, stderr)
	}

	// An answer that advertises the real key but proves another: nothing
	// is sent.
	forged := evil.service(t, "kitchen")
	forged.TXT[fpTXT] = real.id.Fingerprint.String()
	code, stderr = send(&fakeLAN{services: []discovery.Service{forged}}, "m6")
	if code != exitIdentity || evil.got("m6") || real.got("m6") {
		t.Fatalf("forged advertisement: exit %d, want %d:\n%s", code, exitIdentity, stderr)
	}

	// The forger holds the name with the real key advertised, the real
	// kitchen answers as "kitchen (2)": the forger proves another key and
	// gets nothing, the real one gets the message.
	code, stderr = send(&fakeLAN{services: []discovery.Service{forged, real.service(t, "kitchen (2)")}}, "m6b")
	if code != 0 || !real.got("m6b") || evil.got("m6b") {
		t.Fatalf("forger first, real renamed: exit %d, real %q, forger %q:\n%s", code, real.out.String(), evil.out.String(), stderr)
	}
	if !strings.Contains(stderr, "an impostor; nothing sent to it") {
		t.Errorf("no warning about the forged answer:\n%s", stderr)
	}

	// forget, then the new key is pinned on the next contact.
	if code, _, stderr := runFake(t, refusingLAN{}, "", "--config-dir", dir, "forget", "kitchen"); code != 0 {
		t.Fatalf("forget: exit %d:\n%s", code, stderr)
	}
	code, stderr = send(&fakeLAN{services: []discovery.Service{evil.service(t, "kitchen")}}, "m7")
	if code != 0 || !evil.got("m7") || !strings.Contains(stderr, "first contact") {
		t.Fatalf("after forget: exit %d:\n%s", code, stderr)
	}
}

// Two keys claiming an unpinned name: nothing is sent.
func TestAmbiguousFirstContact(t *testing.T) {
	dir := t.TempDir()
	a, b := startTLSServer(t, "127.0.0.1:0"), startTLSServer(t, "127.0.0.1:0")
	l := &fakeLAN{services: []discovery.Service{a.service(t, "office"), b.service(t, "office")}}
	code, _, stderr := runFake(t, l, "", "--config-dir", dir, "send", "--to", "office", "--browse-timeout", "300ms", "x")
	if code != exitIdentity || a.got("x") || b.got("x") {
		t.Fatalf("ambiguous: exit %d:\n%s", code, stderr)
	}
}

// The only server found, or the one picked, is judged by its name: a
// conflict is refused.
func TestOnlyServerConflict(t *testing.T) {
	dir := t.TempDir()
	real := startTLSServer(t, "127.0.0.1:0")
	evil := startTLSServer(t, "127.0.0.1:0")
	if code, _, stderr := runFake(t, &fakeLAN{services: []discovery.Service{real.service(t, "kitchen")}}, "", "--config-dir", dir, "send", "--browse-timeout", "100ms", "a"); code != 0 || !real.got("a") {
		t.Fatalf("only server, first contact: exit %d:\n%s", code, stderr)
	}
	code, _, stderr := runFake(t, &fakeLAN{services: []discovery.Service{evil.service(t, "kitchen")}}, "", "--config-dir", dir, "send", "--browse-timeout", "100ms", "b")
	if code != exitIdentity || evil.got("b") {
		t.Fatalf("only server, another key: exit %d:\n%s", code, stderr)
	}
}

// chat --server runs over TLS with a TLS server, and pins it.
func TestChatOverTLS(t *testing.T) {
	dir := t.TempDir()
	s := startTLSServer(t, "127.0.0.1:0")
	c := &chatCmd{As: "alice"}
	c.Server, c.BrowseTimeout = s.addr, time.Second
	c.MaxPayload, c.ConnectTimeout, c.ConfirmTimeout = 1<<20, 5*time.Second, 5*time.Second
	log := zerolog.New(zerolog.NewTestWriter(t))
	var stderr sessiontest.SyncBuffer
	err := c.Run(context.Background(), &log, streams{strings.NewReader("hello over tls\n"), &sessiontest.SyncBuffer{}, &stderr}, refusingLAN{}, configDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !s.got("hello over tls") {
		t.Fatalf("server got %q", s.out.String())
	}
	if k := knownFile(t, dir); !strings.Contains(k, s.addr+" "+s.id.Fingerprint.String()) {
		t.Errorf("chat did not pin the key it met over TLS: %q", k)
	}
}

// browse and the picker mark each server: pinned, new, conflict, no key.
func TestPinMarks(t *testing.T) {
	dir := t.TempDir()
	real, evil := startTLSServer(t, "127.0.0.1:0"), startTLSServer(t, "127.0.0.1:0")
	if code, _, stderr := runFake(t, &fakeLAN{services: []discovery.Service{real.service(t, "kitchen")}}, "", "--config-dir", dir, "send", "--to", "kitchen", "--browse-timeout", "100ms", "x"); code != 0 {
		t.Fatalf("first contact: exit %d:\n%s", code, stderr)
	}
	plainAddr, _ := startServer(t, session.Text)
	other := startTLSServer(t, "127.0.0.1:0")
	services := []discovery.Service{real.service(t, "kitchen"), evil.service(t, "KITCHEN"), evil.service(t, "office"), real.service(t, "kitchen (2)"),
		svc(t, "tutorial", plainAddr), other.service(t, "0ffice")}
	// "0ffice" looks like "office", which another key claims.
	want := []string{"[pinned]", "[CONFLICT: not the pinned key]", "[new]", "[pinned, under another name]", "[no key: plain]", conflictMark}

	code, out, stderr := runFake(t, &fakeLAN{services: services}, "", "--config-dir", dir, "browse", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("browse: exit %d:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("browse listed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, "  "+want[i]) {
			t.Errorf("browse line %q, want it marked %s", l, want[i])
		}
	}

	// browse --json carries the same, in the field "trust".
	wantJSON := []string{"pinned", "conflict-key", "new", "pinned-renamed", "plain", "conflict-name"}
	code, out, stderr = runFake(t, &fakeLAN{services: services}, "", "--config-dir", dir, "browse", "--json", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("browse --json: exit %d:\n%s", code, stderr)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(wantJSON) {
		t.Fatalf("browse --json listed %d lines, want %d:\n%s", len(lines), len(wantJSON), out)
	}
	for i, l := range lines {
		var s struct {
			Name  string `json:"name"`
			Trust string `json:"trust"`
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("browse --json printed %q: %v", l, err)
		}
		if s.Name != services[i].Instance || s.Trust != wantJSON[i] {
			t.Errorf("browse --json: %s, want %q with trust %q", l, services[i].Instance, wantJSON[i])
		}
	}

	known, err := trust.KnownServersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	tty := &fakeTTY{Reader: strings.NewReader("q\n")}
	_, _ = choose(services, func() (io.ReadWriteCloser, error) { return tty, nil }, time.Second, (&clientTrust{known: known}).mark)
	// In the picker, which sees the whole list, "office" is claimed by
	// another key too.
	want[2] = conflictMark
	shown := strings.Split(tty.out.String(), "\n")
	for i, s := range services {
		// The picker lists servers by name, numbered in that order.
		needle := fmt.Sprintf(") %s  (", s.Instance)
		found := false
		for _, l := range shown {
			if strings.Contains(l, needle) {
				found = true
				if !strings.HasSuffix(l, "  "+want[i]) {
					t.Errorf("the picker shows %q, want it marked %s", l, want[i])
				}
			}
		}
		if !found {
			t.Errorf("the picker does not list %q:\n%s", s.Instance, tty.out.String())
		}
	}
}
