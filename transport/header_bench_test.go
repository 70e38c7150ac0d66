package transport

import (
	"fmt"
	"testing"
)

// BenchmarkParseHeader parses the headers the tutorial's client writes
// (digits, then spaces) and a left-padded one.
func BenchmarkParseHeader(b *testing.B) {
	for _, h := range []string{"0", "32", "4096", "65536", "      32"} {
		hdr := []byte(fmt.Sprintf("%-64s", h))
		b.Run(fmt.Sprintf("%q", h), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseHeader(hdr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
