package session

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanmsg/lanmsg/session/trust"
)

func joinAs(t *testing.T, addr, name string, tlsCfg *ClientConfig) *Client {
	t.Helper()
	cfg := ClientConfig{Hello: &Hello{Name: name, Chat: true}}
	if tlsCfg != nil {
		cfg.TLS = tlsCfg.TLS
	}
	cl, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatalf("join as %q: %v", name, err)
	}
	return cl
}

// Chat names go through the name policy: look-alikes of a name in the room
// are renamed, and a refused name is replaced.
func TestChatNamesLookAlikes(t *testing.T) {
	ts := startServer(t, Config{}, Text, nil)
	for _, c := range []struct{ ask, want string }{
		{"alice", "alice"},
		{"\u0430lice", "\u0430lice (2)"}, // Cyrillic а
		{"ALICE", "ALICE (3)"},
		{"b0b", "b0b"},
		{"bob", "bob (2)"},
		{"  spaced   out  ", "spaced out"},
		{"evil\u202eadmin", fallbackChatName},          // a bidirectional override
		{"zero\u200bwidth", fallbackChatName + " (2)"}, // a zero-width space
	} {
		cl := joinAs(t, ts.addr, c.ask, nil)
		if got := cl.Welcome().Name; got != c.want {
			t.Errorf("asking for %+q: given %+q, want %+q", c.ask, got, c.want)
		}
		defer cl.Abort()
	}
	if n := ts.log.Count("refused by the name policy"); n != 2 {
		t.Errorf("%d refusals logged, want 2", n)
	}
}

// A name once used by a key belongs to it, in chat_names: another key or a
// plain session gets another name, and so does a look-alike; the owner gets
// it back, also from a new server on the same config dir.
func TestChatNamesOwnership(t *testing.T) {
	p := newTLSPair(t)
	other, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := other.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := func() *testServer {
		owners, err := trust.NameOwnersIn(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg := p.serverConfig(Config{})
		cfg.ChatNames = owners
		return startServer(t, cfg, Text, nil)
	}
	alice := &ClientConfig{TLS: p.clientConfig()}
	mallory := &ClientConfig{TLS: trust.ClientConfig(&otherCert, trust.Expect(p.server.Fingerprint))}

	ts := start()
	a := joinAs(t, ts.addr, "alice", alice)
	if got := a.Welcome().Name; got != "alice" {
		t.Fatalf("first use: given %q", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ts.waitSessions(t, 0)
	b, err := os.ReadFile(filepath.Join(dir, "chat_names"))
	if err != nil || !strings.Contains(string(b), "alice "+p.client.Fingerprint.String()) {
		t.Fatalf("chat_names %q, %v: want alice owned by %s", b, err, p.client.Fingerprint)
	}
	for _, c := range []struct {
		who  string
		cfg  *ClientConfig
		ask  string
		want string
	}{
		{"another key", mallory, "alice", "alice (2)"},
		// "аlice (2)" looks like "alice (2)", which that key now owns.
		{"another key, look-alike", mallory, "\u0430lice", "\u0430lice (2)"},
		// "Alice (2)" looks like the other key's "alice (2)".
		{"a plain session", nil, "Alice", "Alice (3)"},
	} {
		cl := joinAs(t, ts.addr, c.ask, c.cfg)
		if got := cl.Welcome().Name; got != c.want {
			t.Errorf("%s asking for %+q: given %+q, want %+q", c.who, c.ask, got, c.want)
		}
		if err := cl.Close(); err != nil {
			t.Fatal(err)
		}
		ts.waitSessions(t, 0)
	}

	// A new server on the same dir: the owner gets its name back, the
	// other key still does not.
	ts = start()
	cl := joinAs(t, ts.addr, "alice", mallory)
	if got := cl.Welcome().Name; got != "alice (2)" {
		t.Errorf("after restart, another key asking for alice: given %q", got)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	a = joinAs(t, ts.addr, "ALICE", alice)
	if got := a.Welcome().Name; got != "ALICE" {
		t.Errorf("after restart, the owner asking for ALICE: given %q", got)
	}
	_ = a.Close()
}

// Only the server marks a chat page's participant: the marker, or a
// look-alike of it, is cut from the names others ask for.
func TestChatNamesWebMarkerReserved(t *testing.T) {
	for _, c := range []struct{ ask, want string }{
		{"bob (web)", "bob"},
		{"bob (WEB)", "bob"},
		{"bob  (wеb)", "bob"}, // a Cyrillic е, two spaces
		{"bob (web) (web)", "bob"},
		{" (web)", fallbackChatName},
		{"web", "web"},
		{"bob(web)", "bob(web)"},
	} {
		got, _ := chatName(c.ask, nil, nil, trust.Fingerprint{}, false, nil)
		if got != c.want {
			t.Errorf("asking for %+q: given %+q, want %+q", c.ask, got, c.want)
		}
		marked, _ := markedChatName(c.ask, WebSuffix, nil, nil, trust.Fingerprint{}, false, nil)
		if marked != c.want+WebSuffix {
			t.Errorf("a page asking for %+q: given %+q, want %+q", c.ask, marked, c.want+WebSuffix)
		}
	}
}
