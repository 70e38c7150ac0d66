//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/rooms"
)

// linkServe starts 'lanmsg serve' on loopback, without mDNS, with the config
// dir cfg and args.
func linkServe(t *testing.T, name, cfg string, args ...string) *labProc {
	t.Helper()
	argv := append([]string{"--log-format", "json", "serve", "--config-dir", cfg, "--no-advertise", "--listen", "127.0.0.1:0"}, args...)
	return startLabProc(t, name, lanmsgProcess(t, argv...))
}

// keyOf is the key of config dir cfg, as 'lanmsg id' prints it.
func keyOf(t *testing.T, cfg string) string {
	t.Helper()
	out, err := lanmsgProcess(t, "id", "--config-dir", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	fp, _, _ := strings.Cut(string(out), "\n")
	return fp
}

// TestServeLinkPinned: the linking server pins the accepting server's key
// on first contact and /debug/state shows the link up; a server that comes
// back at that address with another key is refused, with the forget hint,
// until 'lanmsg forget' is run, which takes effect without a restart.
func TestServeLinkPinned(t *testing.T) {
	dir := t.TempDir()
	cfgA, cfgA2, cfgB := filepath.Join(dir, "a"), filepath.Join(dir, "a2"), filepath.Join(dir, "b")
	allow := filepath.Join(dir, "link-allow")
	if err := os.WriteFile(allow, []byte(keyOf(t, cfgB)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyA := keyOf(t, cfgA)
	readyA := filepath.Join(dir, "a.ready")
	a := linkServe(t, "serve A", cfgA, "--link-listen", "127.0.0.1:0", "--link-allow", allow, "--ready-file", readyA)
	infoA, err := waitReady(readyA, a.done, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addr := infoA.LinkAddr
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("ready file link_addr %q, want 127.0.0.1 and the port taken", addr)
	}
	ready := filepath.Join(dir, "b.ready")
	b := linkServe(t, "serve B", cfgB, "--link", addr, "--debug-listen", "127.0.0.1:0", "--ready-file", ready)
	b.waitLine(procStderr, 15*time.Second, "first contact", logged("first contact with the linked server", addr, keyA))
	b.waitLine(procStderr, 15*time.Second, "link up", logged("link up", keyA))
	info, err := waitReady(ready, b.done, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + info.DebugAddr + "/debug/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Links []rooms.LinkState `json:"links"`
	}
	err = json.NewDecoder(resp.Body).Decode(&state)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Links) != 1 || !state.Links[0].Up || state.Links[0].Dir != "out" || state.Links[0].Addr != addr || state.Links[0].Key != keyA {
		t.Errorf("/debug/state links: %+v, want the one link to %s up with key %s", state.Links, addr, keyA)
	}

	// A is replaced, at the same address, by a server with another key.
	stopProc(t, a)
	b.waitLine(procStderr, 15*time.Second, "link down", logged("link down"))
	a2 := linkServe(t, "serve A2", cfgA2, "--link-listen", addr, "--link-allow", allow)
	refused := b.waitLine(procStderr, 15*time.Second, "the new key refused", logged("link refused"))
	for _, want := range []string{keyOf(t, cfgA2), "lanmsg forget " + addr} {
		if !strings.Contains(refused, want) {
			t.Errorf("the refusal does not say %q: %s", want, refused)
		}
	}
	out, err := lanmsgProcess(t, "forget", "--config-dir", cfgB, addr).CombinedOutput()
	if err != nil {
		t.Fatalf("lanmsg forget: %v: %s", err, out)
	}
	b.waitLine(procStderr, 15*time.Second, "the new key pinned", logged("first contact with the linked server", keyOf(t, cfgA2)))
	b.waitLine(procStderr, 15*time.Second, "link up with the new key", logged("link up", keyOf(t, cfgA2)))
	stopProc(t, b)
	stopProc(t, a2)
}

// stopProc ends p with SIGTERM and waits for it.
func stopProc(t *testing.T, p *labProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(fmt.Errorf("stop %s: %w", p.name, err))
	}
	p.wantExit(10*time.Second, 0)
}
