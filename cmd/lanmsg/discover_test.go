package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// fakeLAN answers browses with fixed services and records advertisements.
type fakeLAN struct {
	services []discovery.Service
	events   []discovery.Event // for Watch; if nil, services are added
	browsed  []discovery.BrowseConfig
	block    bool          // keep browsing until ctx ends, as mDNS does
	err      error         // Browse fails with it, after the services
	waiting  chan struct{} // if set, closed when a blocking Browse has given its services

	mu         sync.Mutex
	advertised []discovery.AdvertiseConfig
	closed     int
	advErr     error
}

func (f *fakeLAN) Browse(ctx context.Context, cfg discovery.BrowseConfig, found func(discovery.Service)) error {
	f.mu.Lock()
	f.browsed = append(f.browsed, cfg)
	f.mu.Unlock()
	for _, s := range f.services {
		if ctx.Err() != nil {
			return nil
		}
		found(s)
	}
	if f.err != nil {
		return f.err
	}
	if f.block {
		if f.waiting != nil {
			close(f.waiting)
		}
		<-ctx.Done()
	}
	return nil
}

func (f *fakeLAN) Watch(ctx context.Context, cfg discovery.BrowseConfig, event func(discovery.Event)) error {
	if f.events == nil {
		return f.Browse(ctx, cfg, func(s discovery.Service) { event(discovery.Event{Kind: discovery.Added, Service: s}) })
	}
	for _, ev := range f.events {
		event(ev)
	}
	return nil
}

func (f *fakeLAN) Advertise(_ context.Context, cfg discovery.AdvertiseConfig) (advertisement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.advErr != nil {
		return nil, f.advErr
	}
	f.advertised = append(f.advertised, cfg)
	return &fakeAd{f: f, s: discovery.Service{Instance: cfg.Instance, Port: cfg.Port, Addrs: cfg.Addrs, TXT: cfg.TXT}}, nil
}

type fakeAd struct {
	f *fakeLAN
	s discovery.Service
}

func (a *fakeAd) Service() discovery.Service { return a.s }
func (a *fakeAd) Close() error {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	a.f.closed++
	return nil
}

// svc describes a server at an in-process lanmsg server's address.
func svc(t *testing.T, name, addr string) discovery.Service {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return discovery.Service{Instance: name, Host: "h.local.", Addrs: []netip.Addr{ap.Addr()}, Port: int(ap.Port()),
		TXT: map[string]string{"v": "1", "id": "abc"}}
}

func runFake(t *testing.T, l lan, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	code := runWith(l, append([]string{"--log-format", "json"}, args...), strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestBrowseText(t *testing.T) {
	l := &fakeLAN{services: []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "vm (2)", "198.18.0.12:6000")}}
	code, out, errOut := runFake(t, l, "", "browse", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "kitchen ") || !strings.Contains(lines[0], "198.18.0.11 port 5050") ||
		!strings.HasPrefix(lines[1], "vm (2) ") || !strings.Contains(lines[1], "id=abc v=1") {
		t.Errorf("unexpected browse output:\n%s", out)
	}
}

// browse --watch prints each event as it comes, with a mark, or as JSON with an event field.
func TestBrowseWatch(t *testing.T) {
	k := svc(t, "kitchen", "198.18.0.11:5050")
	moved := svc(t, "kitchen", "198.18.0.11:6060")
	l := &fakeLAN{events: []discovery.Event{{Kind: discovery.Added, Service: k}, {Kind: discovery.Changed, Service: moved}, {Kind: discovery.Removed, Service: moved}}}
	code, out, errOut := runFake(t, l, "", "browse", "--watch")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "+ kitchen ") || !strings.HasPrefix(lines[1], "~ kitchen ") ||
		!strings.Contains(lines[1], "port 6060") || !strings.HasPrefix(lines[2], "- kitchen ") {
		t.Errorf("browse --watch printed:\n%s", out)
	}
	code, out, errOut = runFake(t, l, "", "browse", "--watch", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var got struct {
			Event string `json:"event"`
			Name  string `json:"name"`
			Port  int    `json:"port"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		events = append(events, fmt.Sprintf("%s %s %d", got.Event, got.Name, got.Port))
	}
	if strings.Join(events, ", ") != "add kitchen 5050, change kitchen 6060, remove kitchen 6060" {
		t.Errorf("browse --watch --json events %q", events)
	}
	// Plain browse stays a snapshot, without an event field.
	_, out, _ = runFake(t, &fakeLAN{services: []discovery.Service{k}}, "", "browse", "--json", "--timeout", "100ms")
	if strings.Contains(out, `"event"`) {
		t.Errorf("plain browse printed an event field: %s", out)
	}
}

// --interface may be repeated; every name reaches discovery.
func TestInterfaceRepeatable(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Fatalf("interfaces: %v %v", ifs, err)
	}
	a, b := ifs[0].Name, ifs[len(ifs)-1].Name
	l := &fakeLAN{services: []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050")}}
	code, _, errOut := runFake(t, l, "", "browse", "--timeout", "100ms", "--interface", a, "--interface", b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(l.browsed) != 1 || !slices.Equal(l.browsed[0].Interfaces, []string{a, b}) {
		t.Errorf("browse asked discovery for %+v, want interfaces [%s %s]", l.browsed, a, b)
	}
}

func TestBrowseJSON(t *testing.T) {
	l := &fakeLAN{services: []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050")}}
	code, out, errOut := runFake(t, l, "", "browse", "--json", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Name  string            `json:"name"`
		Host  string            `json:"host"`
		Addrs []string          `json:"addrs"`
		Port  int               `json:"port"`
		TXT   map[string]string `json:"txt"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Name != "kitchen" || got.Host != "h.local." || len(got.Addrs) != 1 || got.Addrs[0] != "198.18.0.11" || got.Port != 5050 || got.TXT["id"] != "abc" {
		t.Errorf("got %+v", got)
	}
}

func TestBrowseNoneFound(t *testing.T) {
	code, out, errOut := runFake(t, &fakeLAN{block: true}, "", "browse", "--timeout", "50ms")
	if code != exitUnreachable || out != "" || !strings.Contains(errOut, "no lanmsg server found") || !strings.Contains(errOut, "UDP port 5353") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
}

func TestSendTo(t *testing.T) {
	addr, out := startServer(t, session.Text)
	// "kitchen" answers first; browsing would go on for a minute: --to must
	// return as soon as its server is found.
	l := &fakeLAN{block: true, services: []discovery.Service{svc(t, "office", closedPort(t)), svc(t, "Kitchen", addr)}}
	start := time.Now()
	code, _, errOut := runFake(t, l, "", "send", "--to", "kitchen", "--browse-timeout", "1m", "hi there")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("send --to waited %v: it must not wait out the browse timeout", d)
	}
	if !strings.Contains(out.String(), " : hi there\n") {
		t.Errorf("not delivered: %q", out.String())
	}
	if !strings.Contains(errOut, `"server":"Kitchen"`) || !strings.Contains(errOut, `"addr":"`+addr+`"`) {
		t.Errorf("send must say which server and address it used:\n%s", errOut)
	}
}

func TestSendToNotFound(t *testing.T) {
	l := &fakeLAN{block: true, services: []discovery.Service{svc(t, "office", "198.18.0.11:5050")}}
	code, _, errOut := runFake(t, l, "", "send", "--to", "kitchen", "--browse-timeout", "50ms", "hi")
	if code != exitUnreachable || !strings.Contains(errOut, `no lanmsg server named "kitchen"`) || !strings.Contains(errOut, `servers found: "office"`) {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

func TestSendToHostPort(t *testing.T) {
	addr, out := startServer(t, session.Text)
	code, _, errOut := runFake(t, refusingLAN{}, "", "send", "--to", addr, "direct")
	if code != 0 || !strings.Contains(out.String(), " : direct\n") {
		t.Errorf("exit %d, output %q:\n%s", code, out.String(), errOut)
	}
}

func TestSendOnlyServer(t *testing.T) {
	addr, out := startServer(t, session.Text)
	l := &fakeLAN{services: []discovery.Service{svc(t, "only", addr)}}
	code, _, errOut := runFake(t, l, "line one\nline two\n", "send", "--browse-timeout", "50ms")
	if code != 0 || !strings.Contains(out.String(), " : line one\n") || !strings.Contains(out.String(), " : line two\n") {
		t.Errorf("exit %d, output %q:\n%s", code, out.String(), errOut)
	}
}

func TestSendSeveralNoTerminal(t *testing.T) {
	l := &fakeLAN{services: []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}}
	// No controlling terminal: choose must not find one.
	tgt, err := choose(l.services, func() (io.ReadWriteCloser, error) { return nil, errors.New("no tty") }, time.Second, nil)
	var ce *cliError
	if !errors.As(err, &ce) || ce.code != exitUsage || !strings.Contains(ce.err.Error(), `"kitchen", "office"`) || !strings.Contains(ce.hint, "--to") {
		t.Fatalf("got %+v, %v", tgt, err)
	}
}

func TestSendNoneFound(t *testing.T) {
	code, _, errOut := runFake(t, &fakeLAN{block: true}, "", "send", "--browse-timeout", "50ms", "hi")
	if code != exitUnreachable || !strings.Contains(errOut, "no lanmsg server found") || !strings.Contains(errOut, "--server HOST:PORT") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// fakeTTY is a terminal whose input is fixed.
type fakeTTY struct {
	io.Reader
	out bytes.Buffer
}

func (f *fakeTTY) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *fakeTTY) Close() error                { return nil }

func TestPick(t *testing.T) {
	found := []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5051")}
	for _, tc := range []struct {
		input, want string
		ok          bool
	}{
		{"2\n", "office", true},
		{"7\nx\n1\n", "kitchen", true}, // asks again after bad answers
		{"OFFICE\n", "office", true},   // by name, any case
		{"q\n", "", false},
		{"", "", false}, // Ctrl-D
	} {
		tty := &fakeTTY{Reader: strings.NewReader(tc.input)}
		got, err := choose(found, func() (io.ReadWriteCloser, error) { return tty, nil }, time.Second, nil)
		if tc.ok != (err == nil) || got.name != tc.want {
			t.Errorf("input %q: got %q, %v", tc.input, got.name, err)
		}
		screen := tty.out.String()
		if !strings.Contains(screen, "1) kitchen  (198.18.0.11 port 5050)") || !strings.Contains(screen, "2) office  (198.18.0.12 port 5051)") {
			t.Errorf("the list is not shown:\n%s", screen)
		}
	}
}

func TestDialFallsBackToNextAddress(t *testing.T) {
	addr, out := startServer(t, session.Text)
	log := zerolog.New(zerolog.NewTestWriter(t))
	tgt := target{name: "two-addrs", endpoints: []string{closedPort(t), addr}}
	cl, used, err := dialFirst(t.Context(), tgt, session.ClientConfig{}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if used != addr {
		t.Errorf("used %s, want %s", used, addr)
	}
	if err := cl.Send([]byte("via fallback")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), " : via fallback\n") {
		t.Errorf("output %q", out.String())
	}
}

// serveInProcess runs 'lanmsg serve' with l until the returned stop is
// called; it returns the address the server listens on and its stderr.
func serveInProcess(t *testing.T, l lan, cmd serveCmd) (addr string, stop func() (string, error)) {
	t.Helper()
	return serveInProcessDir(t, l, cmd, t.TempDir())
}

// serveInProcessDir is serveInProcess with the config dir dir.
func serveInProcessDir(t *testing.T, l lan, cmd serveCmd, dir string) (addr string, stop func() (string, error)) {
	t.Helper()
	if cmd.Format == "" {
		cmd.Format = "text"
	}
	cmd.MaxPayload, cmd.MaxSessions, cmd.SendQueue = 1<<20, 8, 1<<20
	cmd.IdleTimeout, cmd.HeaderTimeout, cmd.ReadTimeout = time.Minute, time.Minute, time.Minute
	cmd.SendTimeout, cmd.MaxSessionsPerHost, cmd.MemoryBudget = time.Minute, 8, 128<<20
	cmd.MinRate, cmd.MinRateWindow, cmd.PingInterval = 1<<10, 10*time.Second, time.Minute
	cmd.MaxRooms, cmd.History, cmd.RoomMaxMsgs, cmd.RoomMaxBytes, cmd.RoomMaxAge = 256, 20, 10000, 64<<20, time.Hour
	cmd.DMMaxMsgs, cmd.DMMaxBytes, cmd.DMMaxAge = 100, 64<<20, time.Hour
	if cmd.DataDir == "" {
		cmd.DataDir = t.TempDir() // servers sharing a config dir here run at once
	}
	pr, pw := io.Pipe()
	log := zerolog.New(pw)
	ctx, cancel := context.WithCancel(t.Context())
	cmd.ReadyFile = filepath.Join(t.TempDir(), "serve.ready")
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- cmd.Run(ctx, &log, streams{strings.NewReader(""), io.Discard, io.Discard}, l, configDir(dir))
		close(exited)
		pw.Close()
	}()
	var logBuf sessiontest.SyncBuffer
	decoded := make(chan struct{})
	go func() {
		defer close(decoded)
		dec := json.NewDecoder(pr)
		for {
			var m map[string]any
			if dec.Decode(&m) != nil {
				return
			}
			b, _ := json.Marshal(m)
			_, _ = logBuf.Write(append(b, '\n'))
		}
	}()
	info, err := waitReady(cmd.ReadyFile, exited, 10*time.Second)
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v\n%s", err, logBuf.String())
	}
	addr = info.Addr
	return addr, func() (string, error) {
		cancel()
		err := <-done
		<-decoded
		return logBuf.String(), err
	}
}

func TestServeAdvertises(t *testing.T) {
	l := &fakeLAN{}
	addr, stop := serveInProcess(t, l, serveCmd{Listen: "0.0.0.0:0", Name: "kitchen", AdvertiseAddr: []string{"198.18.0.11"}})
	_, port, _ := net.SplitHostPort(addr)
	log, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.advertised) != 1 {
		t.Fatalf("advertised %d times:\n%s", len(l.advertised), log)
	}
	a := l.advertised[0]
	if a.Instance != "kitchen" || strconv.Itoa(a.Port) != port || len(a.Addrs) != 1 || a.Addrs[0].String() != "198.18.0.11" || a.TXT["ver"] == "" {
		t.Errorf("advertised %+v", a)
	}
	if l.closed != 1 {
		t.Errorf("advertisement closed %d times, want 1", l.closed)
	}
	if !strings.Contains(log, "advertising on the LAN") {
		t.Errorf("log does not say it advertises:\n%s", log)
	}
}

func TestServeLoopbackNotAdvertised(t *testing.T) {
	l := &fakeLAN{}
	_, stop := serveInProcess(t, l, serveCmd{Listen: "127.0.0.1:0"})
	log, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.advertised) != 0 || !strings.Contains(log, "not advertising") {
		t.Errorf("a loopback-only server must not advertise (got %d):\n%s", len(l.advertised), log)
	}
}

func TestServeNoAdvertise(t *testing.T) {
	l := &fakeLAN{}
	_, stop := serveInProcess(t, l, serveCmd{Listen: "0.0.0.0:0", NoAdvertise: true})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(l.advertised) != 0 {
		t.Error("--no-advertise advertised")
	}
}

func TestServeAdvertiseFailureKeepsServing(t *testing.T) {
	l := &fakeLAN{advErr: errors.New("no multicast interface")}
	addr, stop := serveInProcess(t, l, serveCmd{Listen: "0.0.0.0:0"})
	_, port, _ := net.SplitHostPort(addr)
	code, _, errOut := runFake(t, refusingLAN{}, "", "send", "--server", "127.0.0.1:"+port, "still here")
	log, err := stop()
	if err != nil || code != 0 {
		t.Fatalf("serve %v, send exit %d: %s", err, code, errOut)
	}
	if !strings.Contains(log, "cannot advertise over mDNS; still serving") {
		t.Errorf("log:\n%s", log)
	}
}

func TestAdvertiseAddrRejectsLoopback(t *testing.T) {
	code, _, errOut := runFake(t, &fakeLAN{}, "", "serve", "--advertise-addr", "127.0.0.1")
	if code != exitUsage || !strings.Contains(errOut, "cannot be reached from other machines") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// TestBrowseInterrupted: Ctrl-C during browse is an interruption, not
// "no server found".
func TestBrowseInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	log := zerolog.New(zerolog.NewTestWriter(t))
	done := make(chan error, 1)
	go func() {
		done <- (&browseCmd{Timeout: time.Minute}).Run(ctx, &log, streams{strings.NewReader(""), io.Discard, io.Discard}, &fakeLAN{block: true}, configDir(t.TempDir()))
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestBrowseColumnsDisplayWidth: names with emoji, CJK letters or combining
// accents keep the columns in line on a terminal, where such characters take
// two columns or none rather than one per byte or rune.
func TestBrowseColumnsDisplayWidth(t *testing.T) {
	names := []string{"kitchen", "küche 🍳", "台所", "cafe\u0301"}
	var services []discovery.Service
	for i, n := range names {
		services = append(services, svc(t, n, fmt.Sprintf("198.18.0.%d:5050", 11+i)))
	}
	code, out, errOut := runFake(t, &fakeLAN{services: services}, "", "browse", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(names) {
		t.Fatalf("browse printed:\n%s", out)
	}
	for i, l := range lines {
		hostCol := runewidth.StringWidth(l[:strings.Index(l, "h.local.")])
		addrCol := runewidth.StringWidth(l[:strings.Index(l, "198.18.")])
		if hostCol != 25 || addrCol != 50 {
			t.Errorf("line %d (%s): host at column %d, address at %d; want 25 and 50:\n%s", i+1, names[i], hostCol, addrCol, out)
		}
	}
}
