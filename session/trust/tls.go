package trust

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Errors of the TLS verification, for errors.Is.
var (
	// ErrKeyMismatch: the peer's key is not the one expected. The error is
	// a *KeyMismatchError with both fingerprints.
	ErrKeyMismatch = errors.New("the server's key is not the expected one")
	// ErrNoPeerKey: the peer presented no certificate.
	ErrNoPeerKey = errors.New("the peer presented no certificate")
	// ErrNotAllowed: a client whose key is not on the server's allow list.
	ErrNotAllowed = errors.New("this key is not allowed to connect")
)

// KeyMismatchError is a peer whose key is not the one expected.
type KeyMismatchError struct {
	Want, Got Fingerprint
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("the server presented key %v, not the expected %v", e.Got, e.Want)
}

func (e *KeyMismatchError) Unwrap() error { return ErrKeyMismatch }

// IsTLSRecord reports whether b, the first byte a client sends, starts a
// TLS handshake record (0x16) rather than the tutorial's header, whose
// bytes are ASCII digits and spaces.
func IsTLSRecord(b byte) bool { return b == 0x16 }

// Certificate makes a self-signed certificate for the identity's key. It is
// made anew at each start; trust never comes from it, only from the key's
// fingerprint, so it holds no more than X.509 requires: a serial number,
// dates that carry no meaning, and the key. No name and no extension: TLS
// 1.3 encrypts certificates, so nobody reads them in a capture, and a
// server keeps each client's parsed certificate for the session's life
// (1.8 KiB parsed this way, 2.9 KiB with a common name and the usual key
// usage extensions).
func (id *Identity) Certificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trust: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(20 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), id.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trust: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("trust: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Key, Leaf: leaf}, nil
}

// ServerConfig is the server's TLS 1.3 configuration. It presents cert and
// requests, but does not require, a client certificate. TLS proves that a
// client that sends one holds its key (CertificateVerify), and
// PeerFingerprint then gives the client's fingerprint.
//
// verifyClient, if not nil, is called during the handshake with the client's
// fingerprint, or with ok false when the client sent no certificate; an
// error it returns fails the handshake. AllowList.VerifyClient is one.
func ServerConfig(cert tls.Certificate, verifyClient func(fp Fingerprint, ok bool) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if verifyClient == nil {
				return nil
			}
			fp, ok := PeerFingerprint(cs)
			return verifyClient(fp, ok)
		},
	}
}

// ClientConfig is the client's TLS 1.3 configuration. It presents cert, if
// not nil, as the client certificate, and checks the server's key with
// verify, which must not be nil: Expect(fp) for a known key, or a function
// that judges the fingerprint against the pins.
//
// Go's certificate chain check is off (InsecureSkipVerify) because no CA
// vouches for a lanmsg server: the server's leaf public key is checked by
// fingerprint instead, in VerifyConnection, on every handshake. TLS has
// already proved that the server holds the key of the certificate it sent.
func ClientConfig(cert *tls.Certificate, verify func(Fingerprint) error) *tls.Config {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the key is checked by fingerprint in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			fp, ok := PeerFingerprint(cs)
			if !ok {
				return ErrNoPeerKey
			}
			if verify == nil {
				return errors.New("trust: no check for the server's key (a bug: ClientConfig needs a verify function)")
			}
			return verify(fp)
		},
	}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// Expect returns a check that accepts only the key with fingerprint want.
func Expect(want Fingerprint) func(Fingerprint) error {
	return func(got Fingerprint) error {
		if got != want {
			return &KeyMismatchError{Want: want, Got: got}
		}
		return nil
	}
}

// PeerFingerprint returns the fingerprint of the peer's leaf certificate
// key, after (or during) a handshake, and false if it sent none.
func PeerFingerprint(cs tls.ConnectionState) (Fingerprint, bool) {
	if len(cs.PeerCertificates) == 0 {
		return Fingerprint{}, false
	}
	return FingerprintOfCert(cs.PeerCertificates[0]), true
}
