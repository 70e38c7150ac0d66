package trust

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

// A fixed key, so the expected text forms can be written down.
var testSeed = []byte("lanmsg test key seed, 32 bytes!!")

func testFingerprint(t testing.TB) Fingerprint {
	fp, err := FingerprintOf(ed25519.NewKeyFromSeed(testSeed).Public())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestFingerprintTextRoundTrips(t *testing.T) {
	fp := testFingerprint(t)
	s := fp.String()
	if !strings.HasPrefix(s, "SHA256:") || len(s) != 7+43 || strings.ContainsAny(s, "= \n") {
		t.Fatalf("String() = %q: want SHA256: and 43 characters of unpadded base64", s)
	}
	back, err := ParseFingerprint(s)
	if err != nil || back != fp {
		t.Fatalf("ParseFingerprint(String()) = %v, %v", back, err)
	}
	var u Fingerprint
	if err := u.UnmarshalText([]byte(s)); err != nil || u != fp {
		t.Fatalf("UnmarshalText: %v, %v", u, err)
	}
}

func TestParseFingerprintRefuses(t *testing.T) {
	good := testFingerprint(t).String()
	tests := map[string]string{
		"empty":          "",
		"no prefix":      good[7:],
		"lowercase":      "sha256:" + good[7:],
		"md5":            "MD5:" + good[7:],
		"short":          good[:len(good)-1],
		"long":           good + "A",
		"padded":         good + "=",
		"space":          good[:20] + " " + good[21:],
		"url alphabet":   "SHA256:" + strings.Repeat("-", 43),
		"non-canonical":  nonCanonical(good),
		"with a comment": good + "#x",
	}
	for name, in := range tests {
		if _, err := ParseFingerprint(in); !errors.Is(err, ErrBadFingerprint) {
			t.Errorf("%s: ParseFingerprint(%q) = %v, want ErrBadFingerprint", name, in, err)
		}
	}
}

func TestShortCodeAndServerID(t *testing.T) {
	fp := testFingerprint(t)
	code := fp.ShortCode()
	if len(code) != 19 || strings.Count(code, " ") != 3 || strings.Trim(code, "0123456789 ") != "" {
		t.Fatalf("ShortCode() = %q: want four groups of four digits", code)
	}
	if code != fp.ShortCode() {
		t.Fatal("ShortCode is not stable")
	}
	var other Fingerprint
	other[7] = 1
	if other.ShortCode() != "0000 0000 0000 0001" {
		t.Errorf("ShortCode of 00..01 in byte 7 = %q", other.ShortCode())
	}
	id := fp.ServerID()
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("ServerID() = %q: want 16 lowercase hex digits", id)
	}
}

// nonCanonical sets a spare bit of the last character: 43 characters carry
// 258 bits for 256, and the two spare bits must be zero, or two texts would
// parse to one key.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i|1])
}

// The example in PROTOCOL.md and the package documentation: the key made
// from testSeed. A change to any of the text forms breaks every pin and
// allow file people have written, so it must show up here.
func TestDocumentedExample(t *testing.T) {
	fp := testFingerprint(t)
	if got, want := fp.String(), "SHA256:T8J4+otFFnSzXDFQSb/UWrUG9Oz3GPj1lQIe/Fa548Y"; got != want {
		t.Errorf("fingerprint %s, documented %s", got, want)
	}
	if got, want := fp.ShortCode(), "7289 0919 5189 2084"; got != want {
		t.Errorf("short code %s, documented %s", got, want)
	}
	if got, want := fp.ServerID(), "4fc278fa8b451674"; got != want {
		t.Errorf("server id %s, documented %s", got, want)
	}
}
