package trust

import (
	"strings"
	"testing"
)

// Whatever ParseFingerprint accepts, String writes back byte for byte: one
// key has one text form.
func FuzzParseFingerprint(f *testing.F) {
	f.Add(fpOf("a").String())
	f.Add("SHA256:")
	f.Add("sha256:" + strings.Repeat("A", 43))
	f.Add(nonCanonical(fpOf("b").String()))
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if fp.String() != s {
			t.Fatalf("ParseFingerprint(%q) = %v, which prints as %q", s, fp, fp.String())
		}
	})
}

// A known_servers file that parses is written back, pin by pin, as a file
// that parses to the same pins.
func FuzzKnownServers(f *testing.F) {
	a, b := fpOf("a").String(), fpOf("b").String()
	f.Add("# c\nkitchen " + a + "\n\n  vm (2)  " + b + "\n  # x\n10.0.0.1:5050 " + a + "\n")
	f.Add("\\#general " + a + "\nroom #2 " + b + "\n\\\\x " + a + "\n")
	f.Add("[fe80::1]:5050 " + a)
	f.Add("kitchen\t" + a + "\r\n")
	f.Add("K\u0131tchen " + a)
	f.Fuzz(func(t *testing.T, content string) {
		lines, err := splitLines("f", []byte(content), lineStart)
		if err != nil {
			return
		}
		k, err := parseKnownServers("f", lines)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		var out strings.Builder
		for _, p := range k.Pins() {
			out.WriteString(p.String() + "\n")
		}
		lines2, err := splitLines("g", []byte(out.String()), lineStart)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := parseKnownServers("g", lines2)
		if err != nil {
			t.Fatalf("pins written back do not parse: %v\n%s", err, out.String())
		}
		p1, p2 := k.Pins(), k2.Pins()
		if len(p1) != len(p2) {
			t.Fatalf("%d pins, %d after writing back", len(p1), len(p2))
		}
		for i := range p1 {
			if p1[i].Key() != p2[i].Key() || p1[i].Fingerprint != p2[i].Fingerprint || (p1[i].Addr == "") != (p2[i].Addr == "") {
				t.Fatalf("pin %d: %v, %v after writing back", i, p1[i], p2[i])
			}
		}
	})
}

// An allow file either parses, allowing exactly the fingerprints on its
// lines, or fails with a *ParseError or ErrEmptyAllow.
func FuzzAllowList(f *testing.F) {
	f.Add(fpOf("a").String() + " # alice\n\n" + fpOf("b").String() + "\n")
	f.Add("# none\n")
	f.Add(fpOf("a").String() + " extra\n")
	f.Fuzz(func(t *testing.T, content string) {
		lines, err := splitLines("f", []byte(content), anywhere)
		if err != nil {
			return
		}
		l, err := parseAllowList("f", lines)
		if err != nil {
			return
		}
		for _, ln := range lines {
			fp, err := ParseFingerprint(ln.text)
			if err != nil || !l.Allows(fp) {
				t.Fatalf("line %d %q accepted but not allowed (%v)", ln.n, ln.text, err)
			}
		}
	})
}
