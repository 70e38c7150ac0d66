// Package names is lanmsg's one policy for names that people read: chat
// display names and the instance names servers advertise on the LAN. The
// rules are specified in PROTOCOL.md, "Identity and pinning"; in short:
//
//  1. A name is refused if it holds a character that hides or reorders
//     text: a control character (Cc: tab, newline, escape, C1), a format
//     character (Cf: soft hyphen, ...), a bidirectional control (U+061C,
//     U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), a zero-width or
//     otherwise default-ignorable character (U+200B–U+200D, U+2060, U+FEFF,
//     U+180E, U+3164 HANGUL FILLER, variation selectors, ...), a line or
//     paragraph separator, or a private-use character. The error (*Error)
//     names the character as U+XXXX with its Unicode name, where it is, and
//     why.
//  2. Then the PRECIS Nickname profile (RFC 8266) applies: spaces of every
//     kind become U+0020, leading and trailing spaces go and inner runs
//     become one, NFKC (full-width letters and ligatures become plain ones),
//     and anything the profile disallows is refused. Case is kept for
//     display. So "alice " is shown and stored as "alice".
//  3. The result must not be empty and must fit MaxNickname (64) or
//     MaxInstance (63, a DNS label) bytes.
//
// Uniqueness is judged on what a person sees, not on the bytes: two names
// clash when they match after case folding and the UTS #39 confusable
// skeleton (Unicode's confusables.txt), so "alice", "ALICE" and "аlice"
// (Cyrillic а) cannot all be present, nor "bob" and "b0b", nor "Ian" and
// "lan". Keys gives the keys a registry compares; Set is such a registry.
//
// The confusables mapping comes from the Go module
// github.com/mtibben/confusables (v0.0.0-20210201002637-9d1b0723b659), which
// carries Unicode's confusables.txt version 13.0.0 (dated 2020-02-13).
// Characters added to confusables.txt after Unicode 13.0 are not mapped: two
// names that differ only in such characters are told apart. Updating means
// bumping that module (or replacing it with a newer one), never committing a
// table of our own.
//
// The package lives under session, not session/trust: names are about what
// people read, not about keys, and the chat server, discovery's instance
// names and the ownership store in session/trust all use it. It depends on
// nothing in lanmsg, so any of them can import it.
package names
