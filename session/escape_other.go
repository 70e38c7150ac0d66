//go:build !amd64 || purego

package session

import "encoding/binary"

// cleanPrefix returns the length of the leading run of text whose bytes are
// all printable ASCII other than a backslash (the bytes the Text format
// copies unchanged), counted in whole blocks of 32 bytes; the rest is left
// to appendEscaped's own loop.
func cleanPrefix(text []byte) int {
	i := 0
	for i+32 <= len(text) {
		t := text[i : i+32 : i+32]
		if dirty8(binary.LittleEndian.Uint64(t))|dirty8(binary.LittleEndian.Uint64(t[8:]))|
			dirty8(binary.LittleEndian.Uint64(t[16:]))|dirty8(binary.LittleEndian.Uint64(t[24:])) != 0 {
			break
		}
		i += 32
	}
	return i
}
