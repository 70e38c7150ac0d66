package names

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/runenames"
)

// Limits on a name's length, in bytes of UTF-8 after the policy is applied.
const (
	// MaxNickname bounds a chat display name, which rides in every chat
	// event about its owner (the same bound as session's).
	MaxNickname = 64
	// MaxInstance bounds an advertised instance name: a DNS label.
	MaxInstance = 63
)

// Errors a name can be refused with, for errors.Is. Each comes wrapped in an
// *Error that says which name and, where there is one, which character.
var (
	ErrEmpty    = errors.New("a name cannot be empty or only spaces")
	ErrTooLong  = errors.New("the name is too long")
	ErrBadChar  = errors.New("the name holds a character that names may not contain")
	ErrNotUTF8  = errors.New("the name is not valid UTF-8")
	ErrConflict = errors.New("the name looks the same as one already in use")
)

// Error is why a name was refused. Rune and Offset are set when one character
// is the reason.
type Error struct {
	Name   string // the name as given
	Rune   rune   // the refused character, or -1
	Offset int    // its byte offset in Name
	Reason string // what the character is, e.g. "an invisible character"
	Err    error  // one of the Err* sentinels
}

func (e *Error) Error() string {
	if e.Rune >= 0 {
		return fmt.Sprintf("name %+q: %s at byte %d is %s; %v", e.Name, describe(e.Rune), e.Offset, e.Reason, e.Err)
	}
	return fmt.Sprintf("name %+q: %v", e.Name, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// describe names a character the way the Unicode standard does:
// "U+200B ZERO WIDTH SPACE".
func describe(r rune) string {
	if n := runenames.Name(r); n != "" && !strings.HasPrefix(n, "<") {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	return fmt.Sprintf("U+%04X", r)
}

// Nickname applies the name policy to a chat display name and returns the
// name as it is to be shown and stored (see the package documentation).
func Nickname(s string) (string, error) { return apply(s, MaxNickname) }

// Instance applies the name policy to an advertised server (instance) name.
// It is Nickname's policy with the DNS label's limit of 63 bytes.
func Instance(s string) (string, error) { return apply(s, MaxInstance) }

func apply(s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{Name: s, Rune: -1, Err: ErrNotUTF8}
	}
	for i, r := range s {
		if reason := refused(r); reason != "" {
			return "", &Error{Name: s, Rune: r, Offset: i, Reason: reason, Err: ErrBadChar}
		}
	}
	out, err := precis.Nickname.String(s)
	if err != nil {
		if strings.TrimSpace(s) == "" {
			return "", &Error{Name: s, Rune: -1, Err: ErrEmpty}
		}
		allowed := precis.Nickname.Allowed()
		for i, r := range s {
			if !allowed.Contains(r) && !unicode.IsSpace(r) {
				return "", &Error{Name: s, Rune: r, Offset: i, Reason: "not allowed in names by the PRECIS Nickname profile (RFC 8266)", Err: ErrBadChar}
			}
		}
		return "", &Error{Name: s, Rune: -1, Err: fmt.Errorf("%w: %v", ErrBadChar, err)}
	}
	if out == "" {
		return "", &Error{Name: s, Rune: -1, Err: ErrEmpty}
	}
	if len(out) > max {
		return "", &Error{Name: s, Rune: -1, Err: fmt.Errorf("%w: %d bytes of UTF-8, the limit is %d", ErrTooLong, len(out), max)}
	}
	return out, nil
}

// refused says why r may not appear in a name, or "" if the PRECIS profile
// is left to decide. These characters are checked first, on the name as
// given, so that the error can say which character and why.
func refused(r rune) string {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F',
		r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return "a bidirectional control, which changes the order text is shown in"
	case r == '\u200B', r == '\u200C', r == '\u200D', r == '\u2060', r == '\uFEFF', r == '\u180E':
		return "an invisible (zero-width) character"
	case unicode.Is(unicode.Cc, r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible formatting character"
	case unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return "a line or paragraph separator"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.Is(unicode.Variation_Selector, r):
		return "an invisible character"
	case unicode.Is(unicode.Co, r):
		return "a private-use character, which shows differently on every machine"
	}
	return ""
}

// fold is Unicode full case folding, as the Nickname profile compares.
var fold = cases.Fold()

// Skeleton returns the UTS #39 skeleton of s: NFD, each character replaced
// by its prototype from Unicode's confusables.txt, NFD again. Two strings
// with the same skeleton look alike. A skeleton is for comparison only,
// never for display. The mapping is github.com/mtibben/confusables (see the
// package doc for the Unicode version it carries).
func Skeleton(s string) string {
	return confusables.Skeleton(s)
}

// Keys returns the uniqueness keys of a name that has been through Nickname
// or Instance. Two names are confusable when they share a key; a registry of
// names keeps every key of every name in one map. There are two keys because
// case folding and the confusables table do not commute: "ALICE" and "alice"
// meet only when folded first ("I" folds to "i"), "Ian" and "lan" only when
// mapped first ("I" looks like "l").
func Keys(name string) [2]string {
	f := fold.String(name)
	return [2]string{
		"f:" + fold.String(Skeleton(f)),
		"m:" + fold.String(Skeleton(name)),
	}
}

// Confusable reports whether two names (after Nickname or Instance) look
// alike to a person: the same under case folding or confusable characters.
func Confusable(a, b string) bool {
	ka, kb := Keys(a), Keys(b)
	return ka[0] == kb[0] || ka[1] == kb[1]
}

// Set holds names that must stay distinguishable: a name is added only if
// it is confusable with none already there. It is not safe for concurrent
// use.
type Set struct {
	keys map[string]string // uniqueness key -> the name that holds it
}

// Holder returns the name in the set that name would be confused with.
func (s *Set) Holder(name string) (string, bool) {
	for _, k := range Keys(name) {
		if h, ok := s.keys[k]; ok {
			return h, true
		}
	}
	return "", false
}

// Add adds name, or returns an *Error wrapping ErrConflict that names the
// holder if a confusable name is already in the set.
func (s *Set) Add(name string) error {
	if h, ok := s.Holder(name); ok {
		return &Error{Name: name, Rune: -1, Err: fmt.Errorf("%w: %+q", ErrConflict, h)}
	}
	if s.keys == nil {
		s.keys = map[string]string{}
	}
	for _, k := range Keys(name) {
		s.keys[k] = name
	}
	return nil
}

// Remove removes name (the exact name that was added).
func (s *Set) Remove(name string) {
	for _, k := range Keys(name) {
		if s.keys[k] == name {
			delete(s.keys, k)
		}
	}
}
