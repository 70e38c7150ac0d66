// Package trust holds lanmsg's identity keys, the pins that remember them,
// and the TLS configurations that check them. PROTOCOL.md, "Identity and
// pinning", is the specification; this comment is the map of the package.
//
// # Identity
//
// Each config dir (DefaultDir: os.UserConfigDir()/lanmsg) holds one Ed25519
// key, KeyFile ("identity.pem", PEM "PRIVATE KEY", PKCS#8), made on first
// use by Load. The dir is made with mode 0700 and the key with 0600. Like
// ssh, Load refuses a key file that others may read or write and a dir that
// others may write (*PermissionError, with a Hint: the chmod that fixes it).
// Processes that start at once on a new dir end with the same key.
//
// # Fingerprints, short codes, server ids
//
// A key's Fingerprint is the SHA-256 of its SubjectPublicKeyInfo (DER). Its
// one text form, printed by `lanmsg id` and written in every file, is
// OpenSSH's: "SHA256:" and 43 characters of unpadded standard base64,
//
//	SHA256:T8J4+otFFnSzXDFQSb/UWrUG9Oz3GPj1lQIe/Fa548Y
//
// ParseFingerprint accepts exactly that. ShortCode is 16 digits in four
// groups ("7289 0919 5189 2084") to read aloud: the first 8 bytes of the
// fingerprint, big-endian, modulo 10^16, about 53 bits (ShortCodeBits).
// ServerID, the TXT "id", is the first 8 bytes in hex.
//
// # TLS
//
// Identity.Certificate makes a self-signed certificate for the key at each
// start. No CA is ever trusted: ServerConfig (TLS 1.3; requests, does not
// require, a client certificate) and ClientConfig (TLS 1.3; presents the
// user's certificate; checks the server's key by fingerprint in
// VerifyConnection, with Expect or a function that judges the pins) turn
// Go's chain check off and check the key instead, always. PeerFingerprint
// gives the other side's key after the handshake.
//
// # Files
//
// KnownServers (known_servers), AllowList (`serve --allow FILE`) and
// NameOwners (chat_names) are text files for people as much as programs:
// one entry a line, blank lines ignored. A line that starts with "#" is a
// comment; in allow files "#" starts a comment anywhere, while in the files
// that hold names (which may contain "#") a comment never follows an entry.
// A line that cannot be read is a *ParseError naming the file and
// line, with a Hint on how to fix it. Changes are made under a lock file
// (FILE.lock, flock): an added line is appended in one write, a removal
// rewrites the file and renames it into place.
//
// # Pinning rules
//
// Judge gives the Verdict for one server seen (New, Pinned, Renamed,
// Conflict); Resolve decides, from the answers seen so far, which server
// `send --to NAME` uses (Use, Wait, Refuse, Ambiguous, NotFound). Both are
// pure functions of the pins and their arguments; acting on them (printing
// the fingerprint on first contact, pinning after the handshake, the exit
// code of a refusal) is the caller's part.
package trust
