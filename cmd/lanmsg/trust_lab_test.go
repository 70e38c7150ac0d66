//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

	if got := messagesFrom(t, evilOut); len(got) != 0 {
		t.Errorf("the attacker received %q", got)
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
