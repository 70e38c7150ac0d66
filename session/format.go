package session

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Message is one received message, as handed to a Format. Text is valid only
// during the call.
type Message struct {
	Time    time.Time // when the bytes were read
	Session uint64    // session id, unique within the server's life
	Peer    string    // the client's address, host:port
	Name    string    // the sender's chat name, in a chat session
	Room    string    // the room it was said in, if any
	Text    []byte    // the payload as received
}

// Format renders received messages as output lines.
type Format uint8

const (
	// Text renders "[PEER] : MESSAGE", as the tutorial's server prints. To
	// keep one message per line, the message is escaped: backslash as \\,
	// newline as \n, carriage return as \r, every other ASCII control
	// character but tab as \xNN, the C1 controls U+0080 to U+009F as
	// \u00NN, and bytes that are not UTF-8 as U+FFFD.
	Text Format = iota
	// JSON renders one JSON object per line (JSON Lines) with the fields
	// time (RFC 3339, nanoseconds), session, peer, name (chat sessions only),
	// room (messages said in a room only) and text. Bytes that are not UTF-8 become U+FFFD.
	JSON
)

// ParseFormat parses "text" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text":
		return Text, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("unknown output format %q (want text or json)", s)
}

func (f Format) String() string {
	if f == JSON {
		return "json"
	}
	return "text"
}

// Append appends m's line, newline included, to dst.
func (f Format) Append(dst []byte, m *Message) []byte {
	if f == JSON {
		return appendJSON(dst, m)
	}
	dst = append(dst, '[')
	dst = append(dst, m.Peer...)
	dst = append(dst, "] : "...)
	dst = appendEscaped(dst, m.Text)
	return append(dst, '\n')
}

const hexDigits = "0123456789abcdef"

// AppendEscaped appends text escaped as the Text format escapes messages, so
// that it stays on one line and cannot drive a terminal.
func AppendEscaped(dst, text []byte) []byte { return appendEscaped(dst, text) }

// dirty8 is non-zero exactly when some byte of w is not printable ASCII or is
// a backslash: below 0x20, from 0x7f up, or '\\'. Each term sets the high bit
// of a byte of that kind: w+1 for 0x7f to 0xfe, w-0x20 for those below 0x20
// and from 0xa0 up (0xff among them), and (w^'\\')-1 for a backslash. A
// carry or borrow can only start at such a byte, and only changes the bytes
// above it, so the lowest one is always found and a clean word is never
// taken for a dirty one.
func dirty8(w uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	return ((w + lo) | (w - lo*0x20) | ((w ^ (lo * '\\')) - lo)) & hi
}

// appendEscaped appends text escaped as described for Text.
func appendEscaped(dst, text []byte) []byte {
	start := 0
	for i := 0; i < len(text); {
		// Skip clean text (printable ASCII but the backslash, the usual
		// case) in blocks, then eight bytes at a time, as found by
		// profiling: any byte below 0x20, from 0x7f up, or a backslash
		// stops the skip, and the byte-by-byte code below deals with it.
		i += cleanPrefix(text[i:])
		for i+8 <= len(text) && dirty8(binary.LittleEndian.Uint64(text[i:])) == 0 {
			i += 8
		}
		if i >= len(text) {
			break
		}
		c := text[i]
		if c >= 0x20 && c != '\\' && c < 0x7f || c == '\t' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(text[i:])
			if r >= 0x80 && r < 0xa0 {
				// A C1 control character (CSI, OSC...): terminals obey
				// those too.
				dst = append(dst, text[start:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
				i += size
				start = i
				continue
			}
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		dst = append(dst, text[start:i]...)
		switch {
		case c == '\\':
			dst = append(dst, `\\`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c >= utf8.RuneSelf:
			dst = append(dst, "\uFFFD"...)
		default:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(dst, text[start:]...)
}

func appendJSON(dst []byte, m *Message) []byte {
	dst = append(dst, `{"time":"`...)
	dst = m.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","session":`...)
	dst = strconv.AppendUint(dst, m.Session, 10)
	dst = append(dst, `,"peer":`...)
	dst = appendJSONString(dst, []byte(m.Peer))
	if m.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, []byte(m.Name))
	}
	if m.Room != "" {
		dst = append(dst, `,"room":`...)
		dst = appendJSONString(dst, []byte(m.Room))
	}
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, m.Text)
	return append(dst, "}\n"...)
}

// appendJSONString appends s as a JSON string, replacing bytes that are not
// UTF-8 with U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			if c >= utf8.RuneSelf {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
