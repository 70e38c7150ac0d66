package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

const (
	// HeaderSize is the length of every frame header, in bytes.
	HeaderSize = 64

	// DefaultMaxPayload is the largest payload a Reader or Writer accepts
	// unless told otherwise: 1 MiB.
	DefaultMaxPayload = 1 << 20

	// MaxPayloadLimit is the largest maximum a Reader or Writer can be given.
	// Lengths are parsed into an int and held in memory; 1 GiB is far beyond
	// any text message and keeps every length well inside int32.
	MaxPayloadLimit = 1 << 30

	// Disconnect is the payload that ends a session.
	Disconnect = "!DISCONNECT"
)

// The sentinel errors. Errors returned by Reader and Writer wrap them; test
// with errors.Is.
var (
	// ErrBadHeader: a header that is not ASCII digits with optional
	// surrounding spaces, or whose value overflows.
	ErrBadHeader = errors.New("malformed length header")

	// ErrFrameTooLarge: a header claims, or a caller tries to send, a payload
	// longer than the maximum.
	ErrFrameTooLarge = errors.New("frame too large")

	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("stream ended inside a frame")
)

// ProtocolError reports bytes from the peer that break the protocol. It
// unwraps to one of the sentinel errors (Err) and, when there is one, the
// underlying cause.
type ProtocolError struct {
	Err    error  // ErrBadHeader, ErrFrameTooLarge or ErrTruncated
	Header []byte // the offending header, when one was read (a copy)
	Length int    // the length the header claimed, for ErrFrameTooLarge and ErrTruncated
	Max    int    // the limit in force, for ErrFrameTooLarge
	Detail string // what exactly was wrong
	Cause  error  // for example io.ErrUnexpectedEOF
}

func (e *ProtocolError) Error() string {
	msg := "transport: " + e.Err.Error()
	switch {
	case errors.Is(e.Err, ErrFrameTooLarge):
		msg += fmt.Sprintf(": %d bytes claimed, limit is %d", e.Length, e.Max)
	case e.Detail != "":
		msg += ": " + e.Detail
	}
	if e.Header != nil && !errors.Is(e.Err, ErrFrameTooLarge) {
		msg += fmt.Sprintf(" (header %s)", quoteHeader(e.Header))
	}
	return msg
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *ProtocolError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// quoteHeader shows a header for a log line: trailing padding trimmed, the
// rest quoted with Go escapes so NULs and control bytes are visible.
func quoteHeader(h []byte) string {
	end := len(h)
	for end > 0 && h[end-1] == ' ' {
		end--
	}
	q := strconv.Quote(string(h[:end]))
	if end < len(h) {
		q += fmt.Sprintf("+%d spaces", len(h)-end)
	}
	return q
}

// maxParsed bounds the lengths ParseHeader returns: far above any maximum a
// Reader accepts (so such lengths are reported as too large, with the number),
// far below int overflow.
const maxParsed = 1 << 40

// ParseHeader parses a 64-byte header and returns the payload length it
// holds. Accepted: ASCII digits, optionally preceded and followed by ASCII
// spaces, and nothing else. It never allocates unless it fails.
//
// The common header (digits, then spaces) is checked eight bytes at a time;
// anything else goes to parseHeaderSlow, which also words the errors.
func ParseHeader(h []byte) (int, error) {
	if len(h) != HeaderSize {
		return parseHeaderSlow(h)
	}
	h = h[:HeaderSize:HeaderSize]
	i := 0
	for i+8 <= HeaderSize && binary.LittleEndian.Uint64(h[i:]) == spaces8 {
		i += 8
	}
	for i < HeaderSize && h[i] == ' ' {
		i++
	}
	start := i
	n := 0
	// 13 digits hold any value up to maxParsed; more go the slow way.
	for i < HeaderSize && i-start < 13 && h[i]-'0' <= 9 {
		n = n*10 + int(h[i]-'0')
		i++
	}
	if i == start || n > maxParsed {
		return parseHeaderSlow(h)
	}
	for ; i+8 <= HeaderSize; i += 8 {
		if binary.LittleEndian.Uint64(h[i:]) != spaces8 {
			return parseHeaderSlow(h)
		}
	}
	if rest := HeaderSize - i; rest > 0 {
		// The last rest bytes are the top bytes of the final word.
		if binary.LittleEndian.Uint64(h[HeaderSize-8:])>>(8*(8-rest)) != spaces8>>(8*(8-rest)) {
			return parseHeaderSlow(h)
		}
	}
	return n, nil
}

// spaces8 is eight ASCII spaces as a little-endian word.
const spaces8 = 0x2020202020202020

// parseHeaderSlow is ParseHeader one byte at a time, with the errors.
func parseHeaderSlow(h []byte) (int, error) {
	if len(h) != HeaderSize {
		return 0, badHeader(h, fmt.Sprintf("header is %d bytes, want %d", len(h), HeaderSize))
	}
	i := 0
	for i < len(h) && h[i] == ' ' {
		i++
	}
	start := i
	n := 0
	for i < len(h) && h[i] >= '0' && h[i] <= '9' {
		n = n*10 + int(h[i]-'0')
		if n > maxParsed {
			return 0, badHeader(h, "length overflows")
		}
		i++
	}
	if i == start {
		if i == len(h) {
			return 0, badHeader(h, "header is empty (all spaces)")
		}
		return 0, badHeader(h, fmt.Sprintf("unexpected byte %q at offset %d, want a digit", h[i], i))
	}
	for ; i < len(h); i++ {
		if h[i] != ' ' {
			return 0, badHeader(h, fmt.Sprintf("unexpected byte %q at offset %d after the length", h[i], i))
		}
	}
	return n, nil
}

func badHeader(h []byte, detail string) error {
	return &ProtocolError{Err: ErrBadHeader, Header: append([]byte(nil), h...), Detail: detail}
}

// spaces pads headers.
var spaces = [HeaderSize]byte{
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
}

// AppendHeader appends the 64-byte header for a payload of n bytes to dst.
func AppendHeader(dst []byte, n int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, spaces[:HeaderSize-(len(dst)-start)]...)
}

// AppendFrame appends the whole frame (header and payload) for p to dst. It
// does not check any maximum; Writer does.
func AppendFrame(dst, p []byte) []byte {
	return append(AppendHeader(dst, len(p)), p...)
}
