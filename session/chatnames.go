package session

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lanmsg/lanmsg/session/names"
	"github.com/lanmsg/lanmsg/session/trust"
)

// fallbackChatName is given to a participant whose requested name the name
// policy refuses (a control, bidirectional or invisible character...).
const fallbackChatName = "guest"

// chatName decides the name of a participant asking for want, given the
// uniqueness keys of the names in the room (names.Keys) and, when the server
// keeps chat_names, who owns which name. The name goes through the name
// policy (session/names): a refused one becomes fallbackChatName. It must
// not look like a name in the room, nor belong to another key (a plain
// session, with no key, owns nothing): "NAME (2)", "NAME (3)"... are tried
// in turn. A key taking a name nobody owns comes to own it. It returns the
// name and, if the requested one was refused, why.
func chatName(want string, taken map[string]bool, owners *trust.NameOwners, key trust.Fingerprint, hasKey bool, claim func(string) error) (string, error) {
	return markedChatName(want, "", taken, owners, key, hasKey, claim)
}

// markedChatName is chatName for a participant whose names end with
// suffix (WebSuffix for a chat page's, "" for others): the name given is
// NAME, "NAME (2)"... followed by suffix. Ownership is judged on the name
// without the suffix, so that a name owned by a key cannot be taken even
// marked; uniqueness on the whole name. No name without suffix ends with
// WebSuffix (it is cut off), so that only the server marks a participant.
func markedChatName(want, suffix string, taken map[string]bool, owners *trust.NameOwners, key trust.Fingerprint, hasKey bool, claim func(string) error) (string, error) {
	base, refused := names.Nickname(want)
	if refused != nil {
		base = fallbackChatName
	}
	for {
		cut, ok := cutSuffixFold(base, WebSuffix)
		if !ok {
			break
		}
		base = cut
		if base == "" {
			base = fallbackChatName
		}
	}
	limit := names.MaxNickname - len(suffix)
	base = clipName(base, limit)
	free := func(n string) bool {
		for _, k := range names.Keys(n + suffix) {
			if taken[k] {
				return false
			}
		}
		if owners == nil {
			return true
		}
		if _, fp, ok := owners.Owner(n); ok {
			return hasKey && fp == key
		}
		if !hasKey {
			return true
		}
		return claim(n) == nil
	}
	name := base
	for i := 2; !free(name); i++ {
		n := " (" + strconv.Itoa(i) + ")"
		name = clipName(base, limit-len(n)) + n
	}
	return name + suffix, refused
}

// cutSuffixFold cuts suffix (a space and a word) off s, ignoring case and
// look-alikes (the name policy's clash rule applied to the end of s): the
// word may also stand alone.
func cutSuffixFold(s, suffix string) (string, bool) {
	word := strings.TrimLeft(suffix, " ")
	for i := len(s) - 1; i >= 0 && len(s)-i <= 4*len(word); i-- {
		if !utf8.RuneStart(s[i]) || i > 0 && s[i-1] != ' ' {
			continue
		}
		if names.Confusable(s[i:], word) {
			return strings.TrimRight(s[:i], " "), true
		}
	}
	return s, false
}

// clipName cuts s to at most n bytes, on a rune boundary.
func clipName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// chatName is chatName for c, with the server's chat_names and c's key,
// logging a refused name and a claim that could not be recorded.
func (c *conn) chatName(want string, taken map[string]bool) string {
	owners := c.srv.cfg.ChatNames
	key, hasKey := c.tls.Client()
	claim := func(n string) error {
		recorded, err := owners.Claim(n, key)
		switch {
		case err == nil && recorded:
			c.srv.log.Info().Uint64(FieldSession, c.id).Str(FieldName, n).Str(FieldClientKey, key.String()).Msg("chat name now belongs to this key")
		case err != nil && !errors.Is(err, trust.ErrNameOwned):
			// The file could not be written: the name is used, unrecorded.
			c.srv.log.Warn().Err(err).Uint64(FieldSession, c.id).Str(FieldName, n).Msg("could not record the chat name's owner")
			return nil
		}
		return err
	}
	suffix := ""
	if c.web {
		suffix = WebSuffix
	}
	name, refused := markedChatName(want, suffix, taken, owners, key, hasKey, claim)
	if refused != nil {
		c.srv.log.Info().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Str("given", name).AnErr("refused", refused).Msg("chat name refused by the name policy")
	}
	return name
}
