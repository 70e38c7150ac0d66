//go:build !purego

package session

// cleanPrefix returns the length of the leading run of text whose bytes are
// all printable ASCII other than a backslash (the bytes the Text format
// copies unchanged), counted in whole blocks of 16 bytes; the rest is left
// to appendEscaped's own loop. In assembly (SSE2): the scan is what a
// server printing 4 KiB messages spends most of its own time on, and it
// runs about four times as fast as the portable code.
//
//go:noescape
func cleanPrefix(text []byte) int
