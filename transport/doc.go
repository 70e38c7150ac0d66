// Package transport implements lanmsg's wire format: the length-header framing
// of the classic Python socket tutorial, read and written correctly.
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
// Every error caused by the peer's bytes is a [*ProtocolError], which keeps
// the offending header for the log and unwraps to one of the sentinel errors,
// so callers test them with [errors.Is].
package transport
