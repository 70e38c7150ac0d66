package session

import (
	"errors"
	"strconv"
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
	base, refused := names.Nickname(want)
	if refused != nil {
		base = fallbackChatName
	}
	free := func(n string) bool {
		for _, k := range names.Keys(n) {
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
		suffix := " (" + strconv.Itoa(i) + ")"
		name = clipName(base, names.MaxNickname-len(suffix)) + suffix
	}
	return name, refused
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
	name, refused := chatName(want, taken, owners, key, hasKey, claim)
	if refused != nil {
		c.srv.log.Info().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Str("given", name).AnErr("refused", refused).Msg("chat name refused by the name policy")
	}
	return name
}
