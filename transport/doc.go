// Package transport implements lanmsg's wire format: the length-header framing
// of the classic Python socket tutorial, read and written correctly.
// PROTOCOL.md, at the repository's root, specifies the wire format and the
// two-way extension; this comment is how the package implements them.
//
// # Frames
//
// A frame is a 64-byte header followed by a payload. The header holds the
// payload's length in bytes as ASCII decimal digits, padded with spaces to 64
// bytes; the payload is UTF-8 text. The frame carrying the message "Hi" is
// these 66 bytes:
//
//	offset  bytes
//	0       '2'                         0x32
//	1..63   63 spaces                   0x20 x 63
//	64      'H' 'i'                     0x48 0x69
//
// or, as a Go string, "2" + strings.Repeat(" ", 63) + "Hi". The payload
// "!DISCONNECT" (the [Disconnect] constant) ends a session; the server closes
// the connection after reading it, and that close is the sender's delivery
// confirmation. This is byte-for-byte what the tutorial's client sends and its
// server expects, in both directions.
//
// # What this package fixes
//
// The tutorial reads with recv(64) and recv(n), which may return fewer bytes
// than asked and so desynchronise the stream, and it trusts whatever length a
// header claims. [Reader] instead:
//
//   - completes short reads, so a frame split across any number of TCP
//     segments is read whole;
//   - treats end of stream before a header as a clean end ([io.EOF]) and end of
//     stream inside a frame as [ErrTruncated];
//   - parses headers strictly: ASCII digits with optional surrounding ASCII
//     spaces and nothing else (no signs, letters, NULs, tabs, empty headers or
//     values that overflow); anything else is [ErrBadHeader];
//   - refuses a claimed length above its maximum ([ErrFrameTooLarge], default
//     [DefaultMaxPayload]) before reading or buffering any of the payload, and
//     grows its buffer with the bytes that actually arrive, never with the
//     length a header claims.
//
// [Writer] sends each frame's header and payload in one write, never
// interleaves two frames, and refuses payloads above its maximum.
//
// # The two-way extension
//
// The tutorial's protocol is one-way: the client sends, the server never
// writes, and the tutorial's client never reads. lanmsg extends it without
// changing a byte of that: a client opts in with a first frame
//
//	!HELLO {"v":1,"name":"alice@laptop","chat":true}
//
// and only then does the server write to the connection, in the same framing,
// one JSON object per frame, its kind in "t":
//
//	{"t":"welcome","name":"alice@laptop","names":["alice@laptop","bob@pi"]}
//	{"t":"ack","n":120}                         the first 120 messages are written out
//	{"t":"msg","name":"bob@pi","text":"hi","time":"2026-11-25T12:00:00Z"}
//	{"t":"join","name":"carol@vm"}  {"t":"leave","name":"carol@vm"}
//	{"t":"who","names":[...]}  {"t":"error","text":"..."}
//
// In an extended session the client's frames that start with "!" are
// control frames ("!DISCONNECT", "!WHO"); a message whose text starts with
// "!" is sent with one more "!" in front, which the server removes. Chat text
// from others only ever travels inside a JSON string, so no message can pass
// for a control frame in either direction. Servers that speak the extension
// advertise TXT hello=1 over mDNS; clients send a hello only to those, or
// when told to, because a plain server would print it as a message. Package
// session implements both ends.
//
// Every error caused by the peer's bytes is a [*ProtocolError], which keeps
// the offending header for the log and unwraps to one of the sentinel errors,
// so callers test them with [errors.Is].
package transport
