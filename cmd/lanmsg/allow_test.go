package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/trust"
)

// serve --allow FILE lets only the listed keys connect over TLS; a client
// left out gets nothing delivered and a hint saying why.
func TestServeAllow(t *testing.T) {
	alice, bob := t.TempDir(), t.TempDir()
	aliceID, err := trust.Load(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.Load(bob); err != nil {
		t.Fatal(err)
	}
	allowFile := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allowFile, []byte("# who may send\n"+aliceID.Fingerprint.String()+" # alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srvDir := t.TempDir()
	for _, tlsOnly := range []bool{false, true} {
		addr, stop := serveInProcessDir(t, &fakeLAN{}, serveCmd{Listen: "127.0.0.1:0", Allow: allowFile, TLSOnly: tlsOnly}, srvDir)
		code, _, stderr := runFake(t, refusingLAN{}, "", "--config-dir", alice, "send", "--server", addr, "from alice")
		if code != 0 {
			t.Fatalf("allowed key: exit %d:\n%s", code, stderr)
		}
		for _, receipts := range []bool{false, true} {
			args := []string{"--config-dir", bob, "send", "--server", addr, "from bob"}
			if receipts {
				args = append(args, "--receipts")
			}
			code, _, stderr = runFake(t, refusingLAN{}, "", args...)
			if code == 0 {
				t.Fatalf("a key not in the allow file was confirmed (receipts %v)", receipts)
			}
			if !strings.Contains(stderr, "serve --allow") || !strings.Contains(stderr, "lanmsg id") {
				t.Errorf("refused client (receipts %v, exit %d) gets no hint why:\n%s", receipts, code, stderr)
			}
		}
		log, err := stop()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, "not in the --allow file") {
			t.Errorf("refusal not logged:\n%s", log)
		}
		if tlsOnly == strings.Contains(log, "add --tls-only") {
			t.Errorf("tls-only %v: the warning about plain sessions is wrong:\n%s", tlsOnly, log)
		}
	}
}

// A refused key's messages never reach the output.
func TestAllowNothingDelivered(t *testing.T) {
	s := startTLSServer(t, "127.0.0.1:0")
	s.stop()
	allowed, err := trust.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	list, err := trust.LoadAllowList(writeTemp(t, allowed.Fingerprint.String()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLSServerCfg(t, s.id, list.VerifyClient)
	dir := t.TempDir()
	code, _, stderr := runFake(t, &fakeLAN{services: []discovery.Service{srv.service(t, "kitchen")}}, "", "--config-dir", dir, "send", "--to", "kitchen", "--browse-timeout", "100ms", "not allowed")
	if code == 0 || srv.got("not allowed") || srv.out.String() != "" {
		t.Fatalf("exit %d, output %q:\n%s", code, srv.out.String(), stderr)
	}
	_ = session.Text
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve refuses an allow file it cannot use, with a hint.
func TestServeAllowBadFile(t *testing.T) {
	for _, content := range []string{"# nobody\n", "not a key\n"} {
		code, _, stderr := runFake(t, refusingLAN{}, "", "--config-dir", t.TempDir(), "serve", "--no-advertise", "--listen", "127.0.0.1:0", "--allow", writeTemp(t, content))
		if code != exitUsage || !strings.Contains(stderr, "lanmsg: error:") || !strings.Contains(stderr, "lanmsg: hint:") {
			t.Errorf("allow file %q: exit %d:\n%s", content, code, stderr)
		}
	}
	_ = context.Background
}
