//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// Hosts of the two-site lab: site A on bridge br0, site B on br1, a rogue
// server on br2, and the servers' second interfaces on brlink, the network
// between the sites.
const (
	siteASrv, siteAUser, siteALate = 1, 2, 3
	siteBSrv, siteBUser, siteBLate = 4, 5, 6
	rogueSrv                       = 7
	linkPort                       = "7422" // inside the lab's namespaces: no fixed port on the machine
)

func linkAddr(i int) string { return fmt.Sprintf("198.19.1.%d", i) }

// twoSites is a lab of two LANs that see nothing of each other (mDNS
// included), each with a server and two users, and a rogue server on a LAN
// of its own; the servers have a second interface on the link network.
func twoSites(t *testing.T) *netlab.Lab {
	lab := netlab.Up(t, 7)
	for _, i := range []int{siteBSrv, siteBUser, siteBLate} {
		lab.Rebridge(i, "br1")
	}
	lab.Rebridge(rogueSrv, "br2")
	for _, i := range []int{siteASrv, siteBSrv, rogueSrv} {
		lab.Connect(i, "eth1", "brlink", linkAddr(i)+"/24")
	}
	for i := 1; i <= 7; i++ {
		labHostname(lab, i, fmt.Sprintf("site%d", i))
	}
	return lab
}

// labKey is the key of host i's config dir, as 'lanmsg id' prints it.
func labKey(t *testing.T, lab *netlab.Lab, bin string, i int) string {
	t.Helper()
	p := labRun(t, lab, bin, i, 10*time.Second, "id")
	p.wantCode(0)
	out := p.output(procStdout)
	if len(out) == 0 || !strings.HasPrefix(out[0], "SHA256:") {
		t.Fatalf("lanmsg id on h%d printed %q", i, out)
	}
	return out[0]
}

// logged matches a JSON log line with message msg holding every one of parts.
func logged(msg string, parts ...string) func(string) bool {
	return func(l string) bool {
		if !strings.Contains(l, `"message":"`+msg) {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	}
}

// TestLabLinkedSites: two LANs, each with its own server and users, whose
// servers are linked over a third network. People on both sides talk in
// one room; with the link down for 10 s while both sides talk, every
// message reaches everyone exactly once, in each sender's order, within
// 15 s of the link coming back; a late joiner on either side sees the
// whole room in its history; a server with a key the listening side does
// not list cannot link.
func TestLabLinkedSites(t *testing.T) {
	bin := labLanmsg(t)
	lab := twoSites(t)

	allow := filepath.Join(t.TempDir(), "link-allow")
	if err := os.WriteFile(allow, []byte(labKey(t, lab, bin, siteBSrv)+" # site B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := linkAddr(siteASrv) + ":" + linkPort
	srvA := labServe(t, lab, bin, siteASrv, "site1", "--interface", "eth0", "--link-listen", listen, "--link-allow", allow)
	srvB := labServe(t, lab, bin, siteBSrv, "site4", "--interface", "eth0", "--link", listen)
	waitLogged(srvB.labProc, 15*time.Second, "first contact with site A's key", logged("first contact with the linked server", listen))
	waitLogged(srvA.labProc, 15*time.Second, "site B's link up", logged("link up", `"dir":"in"`))
	waitLogged(srvB.labProc, 15*time.Second, "the link to site A up", logged("link up", `"dir":"out"`))
	for _, s := range []*labServer{srvA, srvB} {
		waitLogged(s.labProc, 15*time.Second, "rooms in step", logged("link: rooms in step"))
	}

	chat := func(i int, host, as string) (*labProc, io.WriteCloser) {
		cmd := labCmd(lab, bin, i, host, "chat", "--as", as, "--room", "standup")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		return startLabProc(t, "chat as "+as, cmd), in
	}
	has := func(s string) func(string) bool { return func(l string) bool { return strings.HasSuffix(l, s) } }
	say := func(w io.Writer, s string) {
		if _, err := io.WriteString(w, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	// A conversation across the sites: each finds its own server on its
	// own LAN.
	alice, aliceIn := chat(siteAUser, "site2", "alice")
	alice.waitLine(procStdout, 15*time.Second, "the welcome", has("* here: alice"))
	bob, bobIn := chat(siteBUser, "site5", "bob")
	bob.waitLine(procStdout, 15*time.Second, "the welcome", has("* here: bob"))
	// A second person on each side, to see that each side keeps working
	// on its own during the outage.
	carol, carolIn := chat(siteALate, "site3", "carol")
	carol.waitLine(procStdout, 15*time.Second, "the welcome", has("* here: alice, carol"))
	dave, daveIn := chat(siteBLate, "site6", "dave")
	dave.waitLine(procStdout, 15*time.Second, "the welcome", has("* here: bob, dave"))
	say(aliceIn, "hello from site A")
	bob.waitLine(procStdout, 15*time.Second, "alice's message across the link", has("[alice] hello from site A"))
	say(bobIn, "hello from site B")
	alice.waitLine(procStdout, 15*time.Second, "bob's message across the link", has("[bob] hello from site B"))

	// The link goes down for 10 s while both sides talk.
	const outage = 10 * time.Second
	const each = 5
	lab.SetLink(siteASrv, "eth1", false)
	cut := time.Now()
	for k := 1; k <= each; k++ {
		say(aliceIn, fmt.Sprintf("a%d during the outage", k))
		say(bobIn, fmt.Sprintf("b%d during the outage", k))
		// Each side goes on working on its own meanwhile.
		carol.waitLine(procStdout, 5*time.Second, "alice's message on site A", has(fmt.Sprintf("[alice] a%d during the outage", k)))
		dave.waitLine(procStdout, 5*time.Second, "bob's message on site B", has(fmt.Sprintf("[bob] b%d during the outage", k)))
		time.Sleep(outage / each) // the talk spreads over the outage: the scenario, not a wait for a signal
	}
	for _, s := range []*labServer{srvA, srvB} {
		s.waitLine(procStderr, outage, "the link down", logged("link down"))
	}
	if d := time.Until(cut.Add(outage)); d > 0 {
		time.Sleep(d) // the rest of the 10 s outage
	}
	// The outage was one: nothing crossed it.
	for _, c := range []struct {
		p     *labProc
		other string
	}{{alice, "[bob] b"}, {carol, "[bob] b"}, {bob, "[alice] a"}, {dave, "[alice] a"}} {
		for _, l := range c.p.output(procStdout) {
			if strings.Contains(l, c.other) && strings.HasSuffix(l, "during the outage") {
				t.Errorf("%s saw %q while the link was down", c.p.name, l)
			}
		}
	}
	lab.SetLink(siteASrv, "eth1", true)
	restored := time.Now()
	say(aliceIn, "a-end")
	say(bobIn, "b-end")
	ends := map[*labProc][]string{alice: {"bob"}, bob: {"alice"}, carol: {"alice", "bob"}, dave: {"alice", "bob"}}
	for _, p := range []*labProc{alice, bob, carol, dave} {
		for _, who := range ends[p] {
			waitAny(p, procStdout, 15*time.Second-time.Since(restored), who+"'s last message after the link healed",
				has(fmt.Sprintf("[%s] %s-end", who, who[:1])))
		}
	}
	t.Logf("the link was down %v; every message was through %v after it came back", restored.Sub(cut).Round(100*time.Millisecond), time.Since(restored).Round(100*time.Millisecond))
	said := func(who string) []string {
		w := []string{fmt.Sprintf("[%s] hello from site %s", who, map[string]string{"alice": "A", "bob": "B"}[who])}
		for k := 1; k <= each; k++ {
			w = append(w, fmt.Sprintf("[%s] %s%d during the outage", who, who[:1], k))
		}
		return append(w, fmt.Sprintf("[%s] %s-end", who, who[:1]))
	}
	// Nobody is echoed their own messages; everyone else sees each once.
	checkOnceInOrder(t, alice.name, alice.output(procStdout), said("bob"))
	checkOnceInOrder(t, bob.name, bob.output(procStdout), said("alice"))
	checkOnceInOrder(t, carol.name, carol.output(procStdout), append(said("alice"), said("bob")...))
	checkOnceInOrder(t, dave.name, dave.output(procStdout), append(said("alice"), said("bob")...))

	// A late joiner on each side sees the whole room in its history: what
	// was said on both sides, before, during and after the outage.
	var history []string
	for _, w := range append(said("alice"), said("bob")...) {
		history = append(history, "(history) "+w)
	}
	for _, late := range []struct {
		i          int
		host, name string
	}{{siteALate, "site3", "erin"}, {siteBLate, "site6", "frank"}} {
		p, in := chat(late.i, late.host, late.name)
		waitAny(p, procStdout, 15*time.Second, "the end of the history", func(l string) bool { return strings.Contains(l, "messages of history above") })
		checkOnceInOrder(t, p.name, p.output(procStdout), history)
		_ = in.Close()
		p.wantExit(10*time.Second, 0)
	}

	// A server whose key site A does not list cannot link.
	rogueKey := labKey(t, lab, bin, rogueSrv)
	rogue := labServe(t, lab, bin, rogueSrv, "site7", "--interface", "eth0", "--link", listen)
	srvA.waitLine(procStderr, 15*time.Second, "the rogue's link refused", logged("link refused", rogueKey))
	srvA.waitLine(procStderr, 15*time.Second, "the rogue's next try refused", logged("link refused", rogueKey))
	for _, l := range rogue.output(procStderr) {
		if logged("link up")(l) {
			t.Errorf("the rogue server logged a link: %s", l)
		}
	}
	for _, l := range srvA.output(procStderr) {
		if logged("link up", rogueKey)(l) {
			t.Errorf("site A let the rogue server link: %s", l)
		}
	}
	for _, in := range []io.WriteCloser{aliceIn, bobIn, carolIn, daveIn} {
		_ = in.Close()
	}
	for _, p := range []*labProc{alice, bob, carol, dave} {
		p.wantExit(10*time.Second, 0)
	}
}

// waitLogged waits for a line of p's stderr that match accepts, among
// those already printed too (labServe's ready has passed them).
func waitLogged(p *labProc, d time.Duration, what string, match func(string) bool) {
	p.t.Helper()
	waitAny(p, procStderr, d, what, match)
}

// waitAny waits for a line of p's stream that match accepts, wherever it is
// in the output, waitLine's cursor notwithstanding.
func waitAny(p *labProc, stream int, d time.Duration, what string, match func(string) bool) {
	p.t.Helper()
	for deadline := time.Now().Add(d); ; {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		for _, l := range p.output(stream) {
			if match(l) {
				return
			}
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			p.dump()
			p.t.Fatalf("%s printed no %s within %v", p.name, what, d)
		}
	}
}

// checkOnceInOrder checks that the lines of a chat's output that are among
// want each appear exactly once, in want's order for each sender.
func checkOnceInOrder(t *testing.T, who string, out, want []string) {
	t.Helper()
	count := map[string]int{}
	var seen []string
	for _, l := range out {
		for _, w := range want {
			if strings.HasSuffix(l, w) {
				count[w]++
				seen = append(seen, w)
			}
		}
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("%s saw %q %d times, want once", who, w, count[w])
		}
	}
	// Each sender's messages in the order said.
	next := map[string]int{}
	order := map[string][]string{}
	for _, w := range want {
		s, _, _ := strings.Cut(w, "]")
		order[s] = append(order[s], w)
	}
	for _, w := range seen {
		s, _, _ := strings.Cut(w, "]")
		if i := next[s]; i < len(order[s]) && order[s][i] == w {
			next[s]++
		} else {
			t.Errorf("%s saw %q out of its sender's order: %q", who, w, seen)
			return
		}
	}
}
