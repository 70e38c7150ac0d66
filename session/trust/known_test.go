package trust

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fpOf makes a distinct fingerprint from a label.
func fpOf(label string) Fingerprint { return sha256.Sum256([]byte(label)) }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_servers")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKnownServersFormat(t *testing.T) {
	a, b, c := fpOf("a"), fpOf("b"), fpOf("c")
	p := writeFile(t, fmt.Sprintf(`# lanmsg known_servers
kitchen %v

  vm (2)    %v
	# the VM, renamed
192.168.1.20:5050 %v
[fe80::1%%eth0]:5050 %v
kitchen %v
room #2 %v
\#general %v
\\share %v`, a, b, c, c, c, a, b, c))
	k, err := LoadKnownServers(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pin{
		{Name: "kitchen", Fingerprint: a, Line: 2},
		{Name: "vm (2)", Fingerprint: b, Line: 4},
		{Addr: "192.168.1.20:5050", Fingerprint: c, Line: 6},
		{Addr: "[fe80::1%eth0]:5050", Fingerprint: c, Line: 7},
		{Name: "kitchen", Fingerprint: c, Line: 8},
		{Name: "room #2", Fingerprint: a, Line: 9},
		{Name: "#general", Fingerprint: b, Line: 10},
		{Name: `\share`, Fingerprint: c, Line: 11},
	}
	got := k.Pins()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pins:\n%v\nwant\n%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("pin %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := len(k.ByName("kitchen")); n != 2 {
		t.Errorf("ByName(kitchen): %d pins, want 2", n)
	}
	if n := len(k.ByName("KITCHEN")); n != 2 {
		t.Errorf("ByName(KITCHEN): %d pins, want 2 (names match as people see them)", n)
	}
	if n := len(k.ByName("kitch\u0435n")); n != 2 {
		t.Errorf("ByName(kitchen with a Cyrillic е): %d pins, want 2", n)
	}
	if n := len(k.ByName("kitchen\u200b")); n != 0 {
		t.Errorf("ByName of a refused name: %d pins, want none", n)
	}
	if got := k.ByAddr("192.168.1.20:5050"); len(got) != 1 || got[0].Fingerprint != c {
		t.Errorf("ByAddr: %v", got)
	}
	if got := k.ByFingerprint(c); len(got) != 4 {
		t.Errorf("ByFingerprint(c): %v, want its four pins", got)
	}
	if got := k.ByFingerprint(fpOf("nobody")); got != nil {
		t.Errorf("ByFingerprint(unknown): %v", got)
	}
}

func TestKnownServersMissingFileIsEmpty(t *testing.T) {
	k, err := KnownServersIn(t.TempDir())
	if err != nil || len(k.Pins()) != 0 {
		t.Fatalf("%v, %v", k.Pins(), err)
	}
}

func TestKnownServersParseErrorsNameFileLineAndFix(t *testing.T) {
	good := fpOf("a").String()
	tests := map[string]string{
		"one word":          "kitchen",
		"no fingerprint":    "kitchen server",
		"bad fingerprint":   "kitchen SHA256:abc",
		"fingerprint first": good + " kitchen",
		"name with control": "kit\x01chen " + good,
		"bidi name":         "\u202ekitchen " + good,
		"trailing comment":  "kitchen " + good + " # the old one",
	}
	for name, bad := range tests {
		p := writeFile(t, "# ok\nfine "+good+"\n"+bad+"\n")
		_, err := LoadKnownServers(p)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrParse) {
			t.Errorf("%s: %v, want a *ParseError", name, err)
			continue
		}
		if pe.Line != 3 || !strings.HasPrefix(err.Error(), p+":3: ") {
			t.Errorf("%s: %q does not point at %s:3", name, err, p)
		}
		if !strings.Contains(pe.Hint(), "lanmsg id") || !strings.Contains(pe.Hint(), "delete it") {
			t.Errorf("%s: hint %q does not say how to fix it", name, pe.Hint())
		}
	}
}

func TestIsAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"192.168.1.20:5050":  true,
		"[fe80::1]:5050":     true,
		"kitchen.local:5050": true,
		"kitchen":            false,
		"kitchen (2)":        false,
		"kitchen:":           false,
		":5050":              false,
		"kitchen:0":          false,
		"kitchen:65536":      false,
		"kitchen:+50":        false,
		"my kitchen:5050":    false,
		"fe80::1":            false,
		"kitchen:http":       false,
		"192.168.1.20:05050": true,
		"kitchen (2):5050 x": false,
		"[::1]:1":            true,
		"alice@laptop:65535": true,
	} {
		if got := IsAddr(s); got != want {
			t.Errorf("IsAddr(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestKnownServersAddAppendsAndSkipsDuplicates(t *testing.T) {
	p := writeFile(t, "# mine\nkitchen "+fpOf("a").String()) // no final newline: a person's edit
	k, err := LoadKnownServers(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Add("vm (2)", fpOf("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Add("10.0.0.1:5050", fpOf("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Add("kitchen", fpOf("a")); err != nil { // already there
		t.Fatal(err)
	}
	if _, err := k.Add(" vm   (2) ", fpOf("b")); err != nil { // the same name, as the policy writes it
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "# mine\nkitchen " + fpOf("a").String() + "\nvm (2) " + fpOf("b").String() + "\n10.0.0.1:5050 " + fpOf("c").String() + "\n"
	if string(b) != want {
		t.Fatalf("file:\n%s\nwant\n%s", b, want)
	}
	again, err := LoadKnownServers(p)
	if err != nil || len(again.Pins()) != 3 || len(k.Pins()) != 3 {
		t.Fatalf("reloaded %v (%v), in memory %v", again.Pins(), err, k.Pins())
	}
	for _, name := range []string{"#general", `\share`, "room #2"} {
		if _, err := k.Add(name, fpOf(name)); err != nil {
			t.Fatal(err)
		}
		reread, err := LoadKnownServers(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := reread.ByName(name); len(got) != 1 || got[0].Name != name || got[0].Fingerprint != fpOf(name) {
			t.Errorf("pinned %q, read back %v", name, got)
		}
	}
	if _, err := k.Add("bad\tname", fpOf("d")); err == nil {
		t.Error("a name with a tab was pinned")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

// Clients pinning at once, each with its own snapshot, lose no pin and
// write no line twice or torn.
func TestKnownServersConcurrentAdds(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := KnownServersIn(dir)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range each {
				if _, err := k.Add(fmt.Sprintf("server %d", i), fpOf(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
				if _, err := k.Add(fmt.Sprintf("w%d-%d", w, i), fpOf("w")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	k, err := KnownServersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.Pins()); n != each+writers*each {
		t.Fatalf("%d pins, want %d (each shared pin once, every own pin)", n, each+writers*each)
	}
}

func TestKnownServersForget(t *testing.T) {
	a, b := fpOf("a"), fpOf("b")
	content := "# top comment\nkitchen " + a.String() + "\n\nKitchen " + b.String() + "\n  # vm\nvm " + b.String() + "\n10.0.0.1:5050 " + a.String() + "\n"
	p := writeFile(t, content)
	k, err := LoadKnownServers(p)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := k.Forget("kitchen")
	if err != nil || len(gone) != 2 || gone[0].Line != 2 || gone[1].Line != 4 {
		t.Fatalf("Forget(kitchen) = %v, %v; want the two kitchen lines", gone, err)
	}
	b2, _ := os.ReadFile(p)
	if want := "# top comment\n\n  # vm\nvm " + b.String() + "\n10.0.0.1:5050 " + a.String() + "\n"; string(b2) != want {
		t.Fatalf("file after Forget:\n%s\nwant\n%s", b2, want)
	}
	if len(k.ByName("kitchen")) != 0 || len(k.Pins()) != 2 {
		t.Errorf("snapshot after Forget: %v", k.Pins())
	}
	if _, err := k.Forget("10.0.0.1:5050"); err != nil {
		t.Errorf("Forget(address): %v", err)
	}
	if _, err := k.Forget("kitchen"); !errors.Is(err, ErrNotPinned) {
		t.Errorf("Forget of an unpinned name: %v, want ErrNotPinned", err)
	}
	empty, _ := KnownServersIn(t.TempDir())
	if _, err := empty.Forget("kitchen"); !errors.Is(err, ErrNotPinned) {
		t.Errorf("Forget with no file: %v, want ErrNotPinned", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".known_servers-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPinFilesHaveASizeLimit(t *testing.T) {
	p := writeFile(t, "")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := "server " + fpOf("a").String() + "\n"
	for written := 0; written <= maxFileSize; written += len(line) {
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	_, err = LoadKnownServers(p)
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") || !strings.Contains(err.Error(), p) {
		t.Fatalf("a known_servers over 16 MiB: %v", err)
	}
}
