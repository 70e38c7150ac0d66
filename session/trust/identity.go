package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File names in a config dir.
const (
	KeyFile          = "identity.pem"  // the Ed25519 key, PEM PKCS#8, mode 0600
	KnownServersFile = "known_servers" // the client's pins (KnownServers)
	ChatNamesFile    = "chat_names"    // a server's chat name owners (NameOwners)
)

// Errors about the config dir and the key file, for errors.Is.
var (
	// ErrUnsafePermissions: the key file can be read, or the dir written,
	// by users other than its owner. *PermissionError says which and how
	// to fix it.
	ErrUnsafePermissions = errors.New("permissions are too open")
	// ErrBadKey: the key file is not an Ed25519 key in PEM PKCS#8.
	ErrBadKey = errors.New("not an Ed25519 private key in PEM PKCS#8")
)

// PermissionError is a key file or config dir that others may read or
// write. Like ssh, lanmsg refuses to use it.
type PermissionError struct {
	Path string
	Mode fs.FileMode
	Dir  bool
}

func (e *PermissionError) Error() string {
	if e.Dir {
		return fmt.Sprintf("config dir %s has mode %04o: others may write to it and replace the key or the pins; %v", e.Path, e.Mode.Perm(), ErrUnsafePermissions)
	}
	return fmt.Sprintf("key file %s has mode %04o: others may read the private key; %v", e.Path, e.Mode.Perm(), ErrUnsafePermissions)
}

// Hint says how to fix it.
func (e *PermissionError) Hint() string {
	if e.Dir {
		return fmt.Sprintf("run: chmod 700 %s", e.Path)
	}
	return fmt.Sprintf("run: chmod 600 %s (and, if others may have read it, move it away so that a new key is made)", e.Path)
}

func (e *PermissionError) Unwrap() error { return ErrUnsafePermissions }

// DefaultDir is the config dir: os.UserConfigDir()/lanmsg, that is
// $XDG_CONFIG_HOME/lanmsg (or ~/.config/lanmsg) on Linux.
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("trust: config dir: %w", err)
	}
	return filepath.Join(d, "lanmsg"), nil
}

// Identity is the key of a config dir.
type Identity struct {
	Dir         string
	Key         ed25519.PrivateKey
	Fingerprint Fingerprint
	Created     bool // this Load made the key
}

// Public returns the public key.
func (id *Identity) Public() ed25519.PublicKey { return id.Key.Public().(ed25519.PublicKey) }

// Load returns the identity of dir, creating the dir (mode 0700) and the key
// (mode 0600) on first use. It refuses a key file that others may read and a
// dir that others may write (*PermissionError). Processes that start at once
// on a new dir end up with the same key: each writes its candidate to a
// temporary file and links it into place, which only the first link does;
// the others read the winner's.
func Load(dir string) (*Identity, error) {
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, KeyFile)
	id, err := readKey(dir, path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	created, err := createKey(dir, path)
	if err != nil {
		return nil, err
	}
	id, err = readKey(dir, path)
	if id != nil {
		id.Created = created
	}
	return id, err
}

// prepareDir creates dir with mode 0700 if need be and checks that only its
// owner may write to it.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("trust: create config dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("trust: config dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("trust: config dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &PermissionError{Path: dir, Mode: fi.Mode(), Dir: true}
	}
	return nil
}

func readKey(dir, path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // fs.ErrNotExist is the caller's cue to create it
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("trust: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &PermissionError{Path: path, Mode: fi.Mode()}
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("trust: read key file %s: %w", path, err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("trust: key file %s: %w (move it away and a new key is made; servers that pinned the old one will then refuse this client until told to forget it)", path, err)
	}
	fp, err := FingerprintOf(key.Public())
	if err != nil {
		return nil, err
	}
	return &Identity{Dir: dir, Key: key, Fingerprint: fp}, nil
}

func parseKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, ErrBadKey
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the key is a %T", ErrBadKey, k)
	}
	return key, nil
}

// createKey makes a key and links it to path unless a key is there already,
// and reports whether it was its key that went there.
func createKey(dir, path string) (bool, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return false, fmt.Errorf("trust: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, fmt.Errorf("trust: encode key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp") // mode 0600
	if err != nil {
		return false, fmt.Errorf("trust: create key file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("trust: create key file: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("trust: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("trust: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("trust: write key file: %w", err)
	}
	// Link, unlike rename, fails if path exists: the first process wins.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("trust: create key file: %w", err)
	}
	return true, syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // best effort: not every system can open a directory
	}
	defer func() { _ = d.Close() }()
	_ = d.Sync()
	return nil
}
