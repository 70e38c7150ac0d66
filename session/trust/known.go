package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lanmsg/lanmsg/session/names"
)

// Pin is one line of known_servers: a server name, or an address, and the
// key pinned for it.
type Pin struct {
	Name        string // the server's name, after names.Instance; "" for an address pin
	Addr        string // HOST:PORT for an address pin; "" for a name pin
	Fingerprint Fingerprint
	Line        int // where it is in the file (0 if not from a file)
}

// Key is what the pin is for: the name, or the address.
func (p Pin) Key() string {
	if p.Addr != "" {
		return p.Addr
	}
	return p.Name
}

// String is the pin's line in known_servers.
func (p Pin) String() string { return escapeKey(p.Key()) + " " + p.Fingerprint.String() }

// escapeKey writes a name that starts with "#" (which would make its line a
// comment) or with "\" with a "\" before it; unescapeKey undoes it.
func escapeKey(k string) string {
	if strings.HasPrefix(k, "#") || strings.HasPrefix(k, `\`) {
		return `\` + k
	}
	return k
}

func unescapeKey(k string) string { return strings.TrimPrefix(k, `\`) }

// IsAddr reports whether s is written HOST:PORT, which known_servers (like
// `send --to`) takes as an address rather than a server name: a host
// without spaces, a colon, and a port from 1 to 65535.
func IsAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " \t") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && port[0] != '+' && port[0] != '-'
}

const knownHint = "each line of known_servers is a server name or HOST:PORT, a space, and a fingerprint as `lanmsg id` prints it (SHA256:...), and nothing after it (a comment is a line of its own that starts with #); fix the line, or delete it and the server is pinned anew on the next contact"

// parsePin parses one known_servers line: the key (a name that may hold
// spaces, or HOST:PORT) and, last, the fingerprint.
func parsePin(text string) (Pin, error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return Pin{}, fmt.Errorf("%w: want a name or HOST:PORT, then a fingerprint; got %+q", ErrParse, clip(text))
	}
	fp, err := ParseFingerprint(f[len(f)-1])
	if err != nil {
		return Pin{}, err
	}
	key := unescapeKey(strings.Join(f[:len(f)-1], " "))
	if IsAddr(key) {
		return Pin{Addr: key, Fingerprint: fp}, nil
	}
	name, err := names.Instance(key)
	if err != nil {
		return Pin{}, err
	}
	return Pin{Name: name, Fingerprint: fp}, nil
}

// KnownServers is a client's pins: the known_servers file in its config dir.
//
// The file is for people too: one pin a line, the server's name (or
// HOST:PORT, for `send --server`) then its fingerprint, as `lanmsg id`
// prints it; a line that starts with "#" is a comment, blank lines are
// ignored. A name may hold spaces and "#" ("room #2 SHA256:..."); one that
// starts with "#" or "\" is written with a "\" before it. Several lines may
// pin one name, to several keys: any of them is then accepted. Deleting a
// line forgets that pin (so does Forget).
//
// A KnownServers is a snapshot of the file: Add and Forget change the file,
// under a lock, and the snapshot. It is not safe for concurrent use.
type KnownServers struct {
	path string
	pins []Pin
}

// LoadKnownServers reads path. A missing file holds no pins; a line that
// cannot be read is a *ParseError.
func LoadKnownServers(path string) (*KnownServers, error) {
	lines, err := readLines(path, lineStart)
	if err != nil {
		return nil, err
	}
	return parseKnownServers(path, lines)
}

func parseKnownServers(path string, lines []line) (*KnownServers, error) {
	k := &KnownServers{path: path}
	for _, l := range lines {
		p, err := parsePin(l.text)
		if err != nil {
			return nil, &ParseError{File: path, Line: l.n, Err: err, hint: knownHint}
		}
		p.Line = l.n
		k.pins = append(k.pins, p)
	}
	return k, nil
}

// KnownServersIn is LoadKnownServers for the known_servers of a config dir.
func KnownServersIn(dir string) (*KnownServers, error) {
	return LoadKnownServers(filepath.Join(dir, KnownServersFile))
}

// Path is the file's path.
func (k *KnownServers) Path() string { return k.path }

// Pins returns every pin, in file order.
func (k *KnownServers) Pins() []Pin { return append([]Pin(nil), k.pins...) }

// ByName returns the pins for a server name. Names match as people see them
// (names.Confusable): a pin for "kitchen" is also a pin for "Kitchen" and
// for "kitchеn" with a Cyrillic е, so that a look-alike name cannot pass
// for a new server. A name the name policy refuses matches nothing.
func (k *KnownServers) ByName(name string) []Pin {
	n, err := names.Instance(name)
	if err != nil {
		return nil
	}
	var out []Pin
	for _, p := range k.pins {
		if p.Name != "" && names.Confusable(p.Name, n) {
			out = append(out, p)
		}
	}
	return out
}

// ByAddr returns the pins for an address (HOST:PORT, compared exactly).
func (k *KnownServers) ByAddr(addr string) []Pin {
	var out []Pin
	for _, p := range k.pins {
		if p.Addr != "" && p.Addr == addr {
			out = append(out, p)
		}
	}
	return out
}

// ByFingerprint returns the pins of a key: the names and addresses it was
// pinned under.
func (k *KnownServers) ByFingerprint(fp Fingerprint) []Pin {
	var out []Pin
	for _, p := range k.pins {
		if p.Fingerprint == fp {
			out = append(out, p)
		}
	}
	return out
}

// Add pins fp for key (a server name, or HOST:PORT) by appending a line to
// the file, under its lock, unless the file already holds that pin.
func (k *KnownServers) Add(key string, fp Fingerprint) (Pin, error) {
	var p Pin
	if IsAddr(key) {
		p = Pin{Addr: key, Fingerprint: fp}
	} else {
		n, err := names.Instance(key)
		if err != nil {
			return Pin{}, fmt.Errorf("trust: pin %+q: %w", key, err)
		}
		p = Pin{Name: n, Fingerprint: fp}
	}
	err := appendLine(k.path, p.String(), func(lines []line) (bool, error) {
		for _, l := range lines {
			if q, err := parsePin(l.text); err == nil && q.Key() == p.Key() && q.Fingerprint == fp {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return Pin{}, err
	}
	for _, q := range k.pins {
		if q.Key() == p.Key() && q.Fingerprint == fp {
			return q, nil
		}
	}
	k.pins = append(k.pins, p)
	return p, nil
}

// ErrNotPinned: Forget found no pin for the name or address.
var ErrNotPinned = errors.New("no pin for that server")

// Forget removes every pin for key: an address exactly, or a name and the
// names confusable with it (what ByName would return). It rewrites the file
// under its lock, keeping every other line, comments included, as it was,
// and returns the pins removed.
func (k *KnownServers) Forget(key string) ([]Pin, error) {
	var match func(Pin) bool
	if IsAddr(key) {
		match = func(p Pin) bool { return p.Addr == key }
	} else {
		n, err := names.Instance(key)
		if err != nil {
			return nil, fmt.Errorf("trust: forget %+q: %w", key, err)
		}
		match = func(p Pin) bool { return p.Name != "" && names.Confusable(p.Name, n) }
	}
	var gone []Pin
	err := rewrite(k.path, func(n int, raw string) (bool, error) {
		t := stripComment(raw, lineStart)
		if t == "" {
			return true, nil
		}
		p, err := parsePin(t)
		if err != nil {
			return false, &ParseError{File: k.path, Line: n, Err: err, hint: knownHint}
		}
		if match(p) {
			p.Line = n
			gone = append(gone, p)
			return false, nil
		}
		return true, nil
	})
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(gone) == 0) {
		return nil, fmt.Errorf("trust: forget %+q: %w in %s", key, ErrNotPinned, k.path)
	}
	if err != nil {
		return nil, err
	}
	kept := k.pins[:0]
	for _, p := range k.pins {
		if !match(p) {
			kept = append(kept, p)
		}
	}
	k.pins = kept
	return gone, nil
}
