package trust

import (
	"errors"
	"fmt"
	"strings"
)

const allowHint = "each line of an allow file holds one fingerprint as `lanmsg id` prints it (SHA256: then 43 characters); \"#\" starts a comment"

// ErrEmptyAllow: an allow file that lists no key, which would let no one in.
var ErrEmptyAllow = errors.New("lists no fingerprint, so no client could connect")

// AllowList is the keys `serve --allow FILE` lets connect over TLS.
//
// The file holds one fingerprint a line, as `lanmsg id` prints it on its
// first line; "#" starts a comment, to the end of the line, so a line can
// say whose key it is ("SHA256:... # alice's laptop"); blank lines are
// ignored.
type AllowList struct {
	keys map[Fingerprint]struct{}
}

// LoadAllowList reads an allow file. A line that is not one fingerprint is
// a *ParseError; a file that is missing, or lists no key, is an error too.
func LoadAllowList(path string) (*AllowList, error) {
	lines, err := readLines(path, anywhere)
	if err != nil {
		return nil, err
	}
	if lines == nil {
		if _, err := readFileExists(path); err != nil {
			return nil, err
		}
	}
	return parseAllowList(path, lines)
}

func parseAllowList(path string, lines []line) (*AllowList, error) {
	a := &AllowList{keys: map[Fingerprint]struct{}{}}
	for _, l := range lines {
		f := strings.Fields(l.text)
		if len(f) != 1 {
			return nil, &ParseError{File: path, Line: l.n, Err: fmt.Errorf("%w: want one fingerprint, got %d words: %+q", ErrParse, len(f), clip(l.text)), hint: allowHint}
		}
		fp, err := ParseFingerprint(f[0])
		if err != nil {
			return nil, &ParseError{File: path, Line: l.n, Err: err, hint: allowHint}
		}
		a.keys[fp] = struct{}{}
	}
	if len(a.keys) == 0 {
		return nil, fmt.Errorf("allow file %s %w", path, ErrEmptyAllow)
	}
	return a, nil
}

// Len is the number of keys allowed.
func (a *AllowList) Len() int { return len(a.keys) }

// Allows reports whether fp is on the list.
func (a *AllowList) Allows(fp Fingerprint) bool {
	_, ok := a.keys[fp]
	return ok
}

// VerifyClient is a verifyClient for ServerConfig: a client must present a
// key on the list.
func (a *AllowList) VerifyClient(fp Fingerprint, ok bool) error {
	if !ok {
		return fmt.Errorf("%w: the client sent no key and an allow list is in force", ErrNotAllowed)
	}
	if !a.Allows(fp) {
		return fmt.Errorf("%w: %v", ErrNotAllowed, fp)
	}
	return nil
}
