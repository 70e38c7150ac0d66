package trust

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lanmsg/lanmsg/session/names"
)

const ownersHint = "each line of chat_names is a chat name, a space, and the fingerprint of the key that owns it (SHA256:...), and nothing after it (a comment is a line of its own that starts with #); fix the line, or delete it to free the name"

// ErrNameOwned: a chat name, or one that looks like it, belongs to another
// key. The error is a *NameOwnedError.
var ErrNameOwned = errors.New("the name belongs to another key")

// NameOwnedError is a claim on a name that another key owns.
type NameOwnedError struct {
	Name  string      // the name claimed
	Owned string      // the owned name it is confused with
	Owner Fingerprint // its owner
}

func (e *NameOwnedError) Error() string {
	if e.Name == e.Owned {
		return fmt.Sprintf("chat name %+q belongs to key %v", e.Name, e.Owner)
	}
	return fmt.Sprintf("chat name %+q looks like %+q, which belongs to key %v", e.Name, e.Owned, e.Owner)
}

func (e *NameOwnedError) Unwrap() error { return ErrNameOwned }

// NameOwners records which key owns which chat name on a server: the
// chat_names file in the server's config dir. The first key to use a name
// owns it from then on; another key, or a plain session (no key), is given a
// different name. Names are compared as people see them (names.Keys), so
// owning "alice" also reserves "ALICE" and "аlice".
//
// The file has the format of known_servers, for names only: a chat name (it
// may hold spaces and "#"), a space, the owner's fingerprint; a line that
// starts with "#" is a comment, and a name that starts with "#" or "\" is
// written with a "\" before it. Deleting a line frees the name.
//
// A NameOwners is safe for concurrent use.
type NameOwners struct {
	path  string
	mu    sync.Mutex
	byKey map[string]nameOwner // names.Keys of each owned name -> the owner
}

type nameOwner struct {
	name string
	fp   Fingerprint
}

// LoadNameOwners reads path; a missing file owns nothing.
func LoadNameOwners(path string) (*NameOwners, error) {
	lines, err := readLines(path, lineStart)
	if err != nil {
		return nil, err
	}
	o := &NameOwners{path: path, byKey: map[string]nameOwner{}}
	for _, l := range lines {
		name, fp, err := parseOwner(l.text)
		if err != nil {
			return nil, &ParseError{File: path, Line: l.n, Err: err, hint: ownersHint}
		}
		o.record(name, fp)
	}
	return o, nil
}

// NameOwnersIn is LoadNameOwners for the chat_names of a config dir.
func NameOwnersIn(dir string) (*NameOwners, error) {
	return LoadNameOwners(filepath.Join(dir, ChatNamesFile))
}

func parseOwner(text string) (string, Fingerprint, error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return "", Fingerprint{}, fmt.Errorf("%w: want a chat name, then a fingerprint; got %+q", ErrParse, clip(text))
	}
	fp, err := ParseFingerprint(f[len(f)-1])
	if err != nil {
		return "", Fingerprint{}, err
	}
	name, err := names.Nickname(unescapeKey(strings.Join(f[:len(f)-1], " ")))
	if err != nil {
		return "", Fingerprint{}, err
	}
	return name, fp, nil
}

// record notes name as fp's; an earlier owner of a confusable name keeps it.
func (o *NameOwners) record(name string, fp Fingerprint) {
	for _, k := range names.Keys(name) {
		if _, taken := o.byKey[k]; !taken {
			o.byKey[k] = nameOwner{name, fp}
		}
	}
}

// Owner returns the owner of name (after names.Nickname), or of an owned
// name confusable with it, and that owned name.
func (o *NameOwners) Owner(name string) (owned string, fp Fingerprint, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.owner(name)
}

func (o *NameOwners) owner(name string) (string, Fingerprint, bool) {
	for _, k := range names.Keys(name) {
		if w, ok := o.byKey[k]; ok {
			return w.name, w.fp, true
		}
	}
	return "", Fingerprint{}, false
}

// Claim gives name to fp. The name goes through names.Nickname first. It returns true if the
// name was new and is now recorded (appended to the file), false if fp
// already owned it, and a *NameOwnedError if another key owns it or a name
// confusable with it.
func (o *NameOwners) Claim(name string, fp Fingerprint) (bool, error) {
	if fp.IsZero() {
		return false, errors.New("trust: claim: no key")
	}
	n, err := names.Nickname(name)
	if err != nil {
		return false, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if owned, owner, ok := o.owner(n); ok {
		if owner != fp {
			return false, &NameOwnedError{Name: n, Owned: owned, Owner: owner}
		}
		return false, nil
	}
	// Another process on the same config dir may have claimed it since the
	// file was read: look again under the file's lock.
	var (
		taken *NameOwnedError
		found bool
	)
	err = appendLine(o.path, escapeKey(n)+" "+fp.String(), func(lines []line) (bool, error) {
		for _, l := range lines {
			on, ofp, err := parseOwner(l.text)
			if err != nil {
				return false, &ParseError{File: o.path, Line: l.n, Err: err, hint: ownersHint}
			}
			if names.Confusable(on, n) {
				o.record(on, ofp)
				found = true
				if ofp != fp {
					taken = &NameOwnedError{Name: n, Owned: on, Owner: ofp}
				}
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return false, err
	}
	if taken != nil {
		return false, taken
	}
	if found {
		return false, nil
	}
	o.record(n, fp)
	return true, nil
}
