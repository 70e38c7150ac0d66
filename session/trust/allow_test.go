package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllowList(t *testing.T) {
	a, b := fpOf("a"), fpOf("b")
	p := filepath.Join(t.TempDir(), "allow")
	content := "# who may send\n" + a.String() + "   # alice's laptop\n\n  " + b.String() + "\n" + a.String() + "\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := LoadAllowList(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 || !l.Allows(a) || !l.Allows(b) || l.Allows(fpOf("c")) {
		t.Errorf("list of %d: a %v b %v c %v", l.Len(), l.Allows(a), l.Allows(b), l.Allows(fpOf("c")))
	}
}

func TestAllowListErrors(t *testing.T) {
	good := fpOf("a").String()
	tests := map[string]string{
		"two words":       good + " alice",
		"two keys":        good + " " + good,
		"bad fingerprint": "SHA256:nope",
		"a name":          "alice",
		"hex":             strings.Repeat("ab", 32),
	}
	for name, bad := range tests {
		p := filepath.Join(t.TempDir(), "allow")
		if err := os.WriteFile(p, []byte(good+"\n# c\n"+bad+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadAllowList(p)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 3 || !strings.HasPrefix(err.Error(), p+":3: ") {
			t.Errorf("%s: %v, want a *ParseError at %s:3", name, err, p)
			continue
		}
		if !strings.Contains(pe.Hint(), "lanmsg id") {
			t.Errorf("%s: hint %q", name, pe.Hint())
		}
	}
	p := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(p, []byte("# nobody yet\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAllowList(p); !errors.Is(err, ErrEmptyAllow) {
		t.Errorf("empty list: %v, want ErrEmptyAllow", err)
	}
	if _, err := LoadAllowList(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}
