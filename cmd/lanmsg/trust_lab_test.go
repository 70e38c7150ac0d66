//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// needTcpdump skips without Debian's tcpdump (.ci/run installs it).
func needTcpdump(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/tcpdump", "/usr/sbin/tcpdump"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("capture: tcpdump is not installed (.ci/run installs it)")
	return ""
}

// startBridgeCapture runs tcpdump on the lab's bridge, in its switch
// namespace, writing every packet whole to file, and waits until it
// listens. stop ends it (SIGTERM, by PID) and waits for it.
func startBridgeCapture(t *testing.T, lab *netlab.Lab, tcpdump, file string) (stop func()) {
	t.Helper()
	sw := strings.TrimSuffix(lab.Host(1), "-h1") + "-sw"
	cmd := exec.Command("ip", "netns", "exec", sw, tcpdump, "-i", "br0", "-n", "-s", "0", "-U", "-w", file)
	p := startLabProc(t, "tcpdump on the lab bridge", cmd)
	p.waitLine(procStderr, 10*time.Second, "tcpdump's listening line", func(l string) bool {
		return strings.Contains(l, "listening on br0")
	})
	return func() {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM tcpdump: %v", err)
		}
		p.exit(5 * time.Second)
	}
}

// serverKey is the key a lab serve logged at start.
func serverKey(t *testing.T, s *labServer) string {
	t.Helper()
	for _, l := range s.output(procStderr) {
		var m struct{ Key, Message string }
		if json.Unmarshal([]byte(l), &m) == nil && m.Key != "" {
			return m.Key
		}
	}
	t.Fatalf("%s logged no key", s.name)
	return ""
}

// TestLabImpostorKitchen: a hostile host claims "kitchen" and runs its own
// lanmsg server. After first contact with the real kitchen, no
// 'send --to kitchen' reaches the attacker: with the real kitchen away, the
// send fails with exit 5; with it back (renamed "kitchen (2)", since the
// attacker holds the name), the send goes to it. A capture on the lab's
// bridge shows none of the lanmsg messages in clear, while the tutorial's
// client, on the same port, still works in clear.
func TestLabImpostorKitchen(t *testing.T) {
	tcpdump := needTcpdump(t)
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	for i := 1; i <= 3; i++ {
		labHostname(lab, i, "labh"+strconv.Itoa(i))
	}
	capFile := filepath.Join(t.TempDir(), "bridge.pcap")
	stopCapture := startBridgeCapture(t, lab, tcpdump, capFile)

	real := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	realKey := serverKey(t, real)

	secrets := []string{"secret-one first contact", "secret-two must never reach the attacker", "secret-three to the real kitchen"}
	first := labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", secrets[0])
	first.wantCode(0)
	if e := first.stderrText(); !strings.Contains(e, `first contact with "kitchen"`) || !strings.Contains(e, realKey) {
		t.Errorf("first contact does not show the real kitchen's key %s:\n%s", realKey, e)
	}

	// The tutorial's client, in clear, on the same port.
	const clear = "tutorial-in-clear on the lanmsg port"
	py, err := filepath.Abs("testdata/tutorial_client.py")
	if err != nil {
		t.Fatal(err)
	}
	tc := lab.Command(3, "/usr/bin/python3", py, lab.Addr(1).String()+":"+strconv.Itoa(real.ad.Port), clear)
	tc.Env = labBaseEnv()
	if out, err := tc.CombinedOutput(); err != nil {
		t.Fatalf("tutorial client: %v: %s", err, out)
	}
	real.waitLine(procStdout, 5*time.Second, "the tutorial client's message", func(l string) bool { return strings.HasSuffix(l, " : "+clear) })
	realOut := real.stop()

	// The attacker takes the name while the real kitchen is away.
	evil := labServe(t, lab, bin, 2, "labh2", "--name", "kitchen")
	if evil.ad.Name != "kitchen" {
		t.Fatalf("the attacker advertises %q, want it to hold \"kitchen\"", evil.ad.Name)
	}
	evilKey := serverKey(t, evil)
	if evilKey == realKey {
		t.Fatal("the attacker has the real kitchen's key: the lab hosts share a config dir")
	}
	start := time.Now()
	refused := labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", "--browse-timeout", "1s", secrets[1])
	refused.wantCode(exitIdentity)
	t.Logf("send --to kitchen with only the attacker answering: exit %d after %v (--browse-timeout 1s)", exitIdentity, time.Since(start))
	if e := refused.stderrText(); !strings.Contains(e, "lanmsg forget kitchen") || !strings.Contains(e, evilKey) {
		t.Errorf("the refusal does not name the attacker's key and how to accept a reinstalled server:\n%s", e)
	}

	// The real kitchen comes back: the attacker holds the name, so it is
	// "kitchen (2)", and found by its pinned key.
	back := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	if back.ad.Name == "kitchen" {
		t.Fatalf("the real kitchen took the name back from the attacker; this test needs the attacker to hold it")
	}
	labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", secrets[2]).wantCode(0)

	evilOut := evil.stop()
	backOut := back.stop()
	stopCapture()

	toEvil := messagesFrom(t, evilOut)
	if len(toEvil) != 0 {
		t.Errorf("the attacker received %q", toEvil)
	}
	client := lab.Addr(3).String()
	realGot := strings.Join(append(messagesFrom(t, realOut), messagesFrom(t, backOut)...), "\n")
	for _, want := range []string{client + " " + secrets[0], client + " " + clear, client + " " + secrets[2]} {
		if !strings.Contains(realGot, want) {
			t.Errorf("the real kitchen did not get %q; it got:\n%s", want, realGot)
		}
	}

	capture, err := os.ReadFile(capFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(capture, []byte(clear)) {
		t.Fatalf("the capture (%d bytes) lacks the tutorial client's message, sent in clear: it did not see the traffic", len(capture))
	}
	for _, s := range secrets {
		if bytes.Contains(capture, []byte(s)) {
			t.Errorf("the capture shows %q in clear", s)
		}
		if bytes.Contains(capture, []byte("secret-")) {
			t.Errorf("the capture shows a lanmsg message's prefix in clear")
			break
		}
	}
	t.Logf("capture on the lab bridge: %d bytes; the tutorial's message in clear, none of %d lanmsg messages", len(capture), len(secrets))
}

// fastResponder is a hostile mDNS responder, inside the attacker's network
// namespace: it claims one instance name for a server of its own, announcing
// it at once and again every second, and answers every query for it (the
// service type, the instance, the host) the moment it arrives, without the
// 20-120 ms that RFC 6762 asks of responders and lanmsg keeps, and with the
// cache-flush bit, so that its answers arrive first and replace others.
type fastResponder struct {
	t       *testing.T
	conn    *net.UDPConn
	p       *ipv4.PacketConn
	mu      sync.Mutex
	records []dns.RR // answers: PTR, SRV, TXT, then the host's A
	answers atomic.Int64
	done    chan struct{}
}

var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// startFastResponder starts the responder on eth0 of lab host i, claiming
// instance for the server at that host's address and port, with txt.
func startFastResponder(t *testing.T, lab *netlab.Lab, i int, instance string, port int, txt map[string]string) *fastResponder {
	t.Helper()
	r := &fastResponder{t: t, done: make(chan struct{})}
	r.set(lab.Addr(i), instance, port, txt)
	inNetns(t, lab.Host(i), func() {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			t.Error(err)
			return
		}
		if r.conn, err = net.ListenMulticastUDP("udp4", ifi, mdnsGroup); err != nil {
			t.Error(err)
			return
		}
		r.p = ipv4.NewPacketConn(r.conn)
		_ = r.p.SetMulticastTTL(255) // as RFC 6762 says, so that no receiver could tell
		_ = r.p.SetMulticastInterface(ifi)
	})
	if r.conn == nil {
		t.FailNow()
	}
	go r.serve()
	go r.announce()
	t.Cleanup(r.stop)
	return r
}

// set replaces what the responder claims.
func (r *fastResponder) set(addr netip.Addr, instance string, port int, txt map[string]string) {
	fqdn := instance + "._lanmsg._tcp.local."
	host := "squatter.local."
	hdr := func(name string, typ uint16, flush bool) dns.RR_Header {
		class := uint16(dns.ClassINET)
		if flush {
			class |= 1 << 15
		}
		return dns.RR_Header{Name: name, Rrtype: typ, Class: class, Ttl: 120}
	}
	var kv []string
	for k, v := range txt {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	rrs := []dns.RR{
		&dns.PTR{Hdr: hdr("_lanmsg._tcp.local.", dns.TypePTR, false), Ptr: fqdn},
		&dns.SRV{Hdr: hdr(fqdn, dns.TypeSRV, true), Port: uint16(port), Target: host},
		&dns.TXT{Hdr: hdr(fqdn, dns.TypeTXT, true), Txt: kv},
		&dns.A{Hdr: hdr(host, dns.TypeA, true), A: addr.AsSlice()},
	}
	r.mu.Lock()
	r.records = rrs
	r.mu.Unlock()
}

// response is the responder's whole claim, as an mDNS response.
func (r *fastResponder) response() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := new(dns.Msg)
	m.Response, m.Authoritative = true, true
	m.Answer = slices.Clone(r.records[:3])
	m.Extra = slices.Clone(r.records[3:])
	b, err := m.Pack()
	if err != nil {
		r.t.Errorf("pack the squatter's answer: %v", err)
	}
	return b
}

// asks reports whether q asks about anything the responder claims.
func (r *fastResponder) asks(q dns.Question) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rr := range r.records {
		if strings.EqualFold(rr.Header().Name, q.Name) {
			return true
		}
	}
	return false
}

func (r *fastResponder) serve() {
	buf := make([]byte, 9000)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var q dns.Msg
		if q.Unpack(buf[:n]) != nil || q.Response || !slices.ContainsFunc(q.Question, r.asks) {
			continue
		}
		b := r.response()
		_, _ = r.conn.WriteToUDP(b, mdnsGroup) // at once
		_, _ = r.conn.WriteToUDP(b, from)      // and to the asker directly
		r.answers.Add(1)
	}
}

// announce sends the claim at start and every second, as a host that
// insists on the name would.
func (r *fastResponder) announce() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		_, _ = r.conn.WriteToUDP(r.response(), mdnsGroup)
		select {
		case <-tick.C:
		case <-r.done:
			return
		}
	}
}

func (r *fastResponder) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
		_ = r.conn.Close()
	}
}

// TestLabFastSquatter: a hostile host answers every mDNS query for
// "kitchen" at once (faster than lanmsg's RFC 6762 delays), claims the name
// (the real kitchen, already announced, gives it up; started again, it
// cannot get it), and runs its own 'lanmsg serve' behind it: first with its
// own key, then copying the real kitchen's TXT (its fingerprint and id).
// Before any first contact, send shows the real kitchen's fingerprint and
// short code on stderr. After it, no 'send --to kitchen' reaches the
// attacker: each is delivered to the real kitchen or refused with exit 5;
// and the real kitchen advertises throughout, as a browse from the third
// host shows at the end.
func TestLabFastSquatter(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	for i := 1; i <= 3; i++ {
		labHostname(lab, i, "labh"+strconv.Itoa(i))
	}
	real := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	id := labRun(t, lab, bin, 1, 10*time.Second, "id")
	id.wantCode(0)
	idLines := id.output(procStdout)
	if len(idLines) < 2 {
		t.Fatalf("lanmsg id printed %q", idLines)
	}
	realFP, realCode := idLines[0], idLines[1]

	// First contact: the fingerprint and the code, as 'lanmsg id' prints
	// them on the real kitchen.
	first := labRun(t, lab, bin, 3, 15*time.Second, "send", "--to", "kitchen", "first contact")
	first.wantCode(0)
	if e := first.stderrText(); !strings.Contains(e, realFP) || !strings.Contains(e, realCode) {
		t.Errorf("first contact does not show the fingerprint %s and code %s of 'lanmsg id':\n%s", realFP, realCode, e)
	}
	var realTXT map[string]string
	for _, s := range labBrowse(t, lab, bin, 3, 1500*time.Millisecond) {
		if s.TXT["fp"] == realFP {
			realTXT = s.TXT
		}
	}
	if realTXT == nil {
		t.Fatal("a browse does not show the real kitchen")
	}

	// The attacker: its own lanmsg server, not advertised by lanmsg but by
	// the squatter, as "kitchen".
	evil := startServe(t, lab, bin, 2, "labh2", "--no-advertise")
	l := evil.waitLine(procStderr, 15*time.Second, "the serving line", func(l string) bool { return strings.Contains(l, "lanmsg serving") })
	var serving struct{ Addr string }
	if err := json.Unmarshal([]byte(l), &serving); err != nil {
		t.Fatal(err)
	}
	_, portText, _ := strings.Cut(serving.Addr, "]:")
	if portText == "" {
		_, portText, _ = strings.Cut(serving.Addr, ":")
	}
	evilPort, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("serving on %q: %v", serving.Addr, err)
	}
	evilKey := serverKey(t, &labServer{labProc: evil.labProc})
	ownTXT := map[string]string{"fp": evilKey, "tls": "1", "hello": "1", "v": realTXT["v"], "ver": realTXT["ver"], "id": "0123456789abcdef"}
	sq := startFastResponder(t, lab, 2, "kitchen", evilPort, ownTXT)

	// The real kitchen, announced, sees the claim and renames (RFC 6762
	// section 9), saying who holds the name.
	rename := real.waitLine(procStderr, 15*time.Second, "a rename", func(l string) bool {
		return strings.Contains(l, `"new_name"`) && strings.Contains(l, "renamed")
	})
	var renamed struct {
		NewName string `json:"new_name"`
	}
	if err := json.Unmarshal([]byte(rename), &renamed); err != nil {
		t.Fatal(err)
	}

	const perPhase = 6
	type result struct {
		text string
		code int
	}
	var results []result
	sends := func(phase string) {
		for i := range perPhase {
			text := fmt.Sprintf("%s send %d", phase, i+1)
			p := labRun(t, lab, bin, 3, 20*time.Second, "send", "--to", "kitchen", "--browse-timeout", "1s", text)
			code := p.cmd.ProcessState.ExitCode()
			results = append(results, result{text, code})
			switch code {
			case 0:
			case exitIdentity:
				if e := p.stderrText(); !strings.Contains(e, "lanmsg: error: ") || !strings.Contains(e, "nothing was sent") {
					t.Errorf("%s: exit 5 without the identity error:\n%s", text, e)
				}
			default:
				t.Errorf("%s: exit %d, want 0 (delivered) or 5 (refused):\n%s", text, code, p.stderrText())
			}
		}
	}
	sends("own-key")
	realSeen := func(when string, name string, port int) {
		t.Helper()
		var seen []string
		for _, s := range labBrowse(t, lab, bin, 3, 1500*time.Millisecond) {
			if s.Name == name && s.Port == port && s.TXT["fp"] == realFP {
				// Pinned as "kitchen", seen under another name.
				if s.Trust != "pinned-renamed" {
					t.Errorf("%s, browse --json marks the real kitchen %q, want pinned-renamed", when, s.Trust)
				}
				return
			}
			seen = append(seen, fmt.Sprintf("%s port %d fp=%s trust=%s", s.Name, s.Port, s.TXT["fp"], s.Trust))
		}
		t.Errorf("%s, the real kitchen (%q port %d) is not advertised; a browse from the third host shows %q", when, name, port, seen)
	}
	realSeen("after the first sends", renamed.NewName, real.ad.Port)

	// Copying the real kitchen's fingerprint and id; and the real kitchen
	// starting again, whose probes the squatter answers first.
	sq.set(lab.Addr(2), "kitchen", evilPort, realTXT)
	realOut := real.stop()
	back := labServe(t, lab, bin, 1, "labh1", "--name", "kitchen")
	if back.ad.Name == "kitchen" {
		t.Fatalf("the real kitchen got the name at startup; the squatter (%d answers) should have claimed it", sq.answers.Load())
	}
	sends("stolen-fp")

	realSeen("at the end", back.ad.Name, back.ad.Port)
	answers := sq.answers.Load()
	sq.stop()
	evilOut := evil.stop()
	realGot := strings.Join(append(messagesFrom(t, realOut), messagesFrom(t, back.stop())...), "\n")

	toEvil := messagesFrom(t, evilOut)
	if len(toEvil) != 0 {
		t.Errorf("the attacker received %q", toEvil)
	}
	delivered, refused := 0, 0
	client := lab.Addr(3).String()
	for _, r := range results {
		in := strings.Contains(realGot, client+" "+r.text)
		switch {
		case r.code == 0 && !in:
			t.Errorf("%q: exit 0, but the real kitchen did not get it", r.text)
		case r.code == 0:
			delivered++
		case r.code == exitIdentity && in:
			t.Errorf("%q: exit 5, yet the real kitchen got it", r.text)
		case r.code == exitIdentity:
			refused++
		}
	}
	t.Logf("squatter answered %d queries at once; of %d sends --to kitchen: %d delivered to the real kitchen, %d refused with exit 5, %d to the attacker (bound: 0 to the attacker; each delivered or refused); the real kitchen advertised as %q at the end",
		answers, len(results), delivered, refused, len(toEvil), back.ad.Name)
}
