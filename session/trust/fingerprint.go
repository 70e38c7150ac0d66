package trust

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint is the SHA-256 of a public key's SubjectPublicKeyInfo (DER),
// the key's identity everywhere in lanmsg. Pinning the key rather than the
// certificate lets a certificate be made anew at every start.
type Fingerprint [sha256.Size]byte

// fingerprintPrefix starts a fingerprint's text form, as in OpenSSH's.
const fingerprintPrefix = "SHA256:"

// fingerprintTextLen is the length of the text form: the prefix and 32 bytes
// in unpadded base64.
var fingerprintTextLen = len(fingerprintPrefix) + base64.RawStdEncoding.EncodedLen(sha256.Size)

// ErrBadFingerprint is wrapped by every error of ParseFingerprint.
var ErrBadFingerprint = errors.New("not a fingerprint")

// FingerprintOf returns the fingerprint of a public key.
func FingerprintOf(pub crypto.PublicKey) (Fingerprint, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("trust: fingerprint: %w", err)
	}
	return sha256.Sum256(der), nil
}

// FingerprintOfCert returns the fingerprint of a certificate's public key.
func FingerprintOfCert(c *x509.Certificate) Fingerprint {
	return sha256.Sum256(c.RawSubjectPublicKeyInfo)
}

// String is the canonical text form, as OpenSSH prints fingerprints:
// "SHA256:" and the 32 bytes in unpadded standard base64 (43 characters).
func (f Fingerprint) String() string {
	return fingerprintPrefix + base64.RawStdEncoding.EncodeToString(f[:])
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseFingerprint.
func (f *Fingerprint) UnmarshalText(b []byte) error {
	p, err := ParseFingerprint(string(b))
	if err != nil {
		return err
	}
	*f = p
	return nil
}

// ParseFingerprint parses the text form that String writes, and nothing else:
// exactly "SHA256:" and 43 characters of unpadded standard base64.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	rest, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok {
		return f, fmt.Errorf("%w: %+q does not start with %q (a fingerprint reads like `lanmsg id` prints it: SHA256: then 43 characters)", ErrBadFingerprint, clip(s), fingerprintPrefix)
	}
	if len(s) != fingerprintTextLen {
		return f, fmt.Errorf("%w: %+q has %d characters after %q, want 43 (was it cut short or joined to the next word?)", ErrBadFingerprint, clip(s), len(rest), fingerprintPrefix)
	}
	n, err := base64.RawStdEncoding.Strict().Decode(f[:], []byte(rest))
	if err != nil || n != len(f) {
		return Fingerprint{}, fmt.Errorf("%w: %+q is not base64 after %q", ErrBadFingerprint, clip(s), fingerprintPrefix)
	}
	return f, nil
}

// clip shortens text quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ShortCodeBits is how much of the fingerprint the short code carries:
// log2(10^16), about 53 bits. Making a key whose code matches a given one
// takes about 2^53 key generations.
const ShortCodeBits = 53

// ShortCode is a code a person can read aloud to compare two keys: the first
// 8 bytes of the fingerprint as a big-endian number, modulo 10^16, written as
// four groups of four digits ("7289 0919 5189 2084").
func (f Fingerprint) ShortCode() string {
	n := binary.BigEndian.Uint64(f[:8]) % 1e16
	d := fmt.Sprintf("%016d", n)
	return d[0:4] + " " + d[4:8] + " " + d[8:12] + " " + d[12:16]
}

// ServerID is the stable id a server advertises (TXT "id"): the first 8
// bytes of the fingerprint in lowercase hex, 16 characters, as long as the
// random id it replaces.
func (f Fingerprint) ServerID() string { return hex.EncodeToString(f[:8]) }

// IsZero reports whether f is the zero value (no key).
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }
