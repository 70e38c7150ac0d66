package trust

import (
	"os"
	"strings"
	"testing"
)

// The examples of known_servers and allow files in PROTOCOL.md are files
// lanmsg reads.
func TestProtocolExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	var known, allow string
	for _, block := range strings.Split(string(b), "```text\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		switch {
		case strings.Contains(block, "known_servers:"):
			known = block
		case strings.Contains(block, "who may send"):
			allow = block
		}
	}
	lines, err := splitLines("PROTOCOL.md", []byte(known), lineStart)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseKnownServers("PROTOCOL.md", lines)
	if err != nil || len(k.Pins()) != 3 || k.Pins()[2].Addr == "" {
		t.Errorf("the known_servers example: %v, %v", k, err)
	}
	lines, err = splitLines("PROTOCOL.md", []byte(allow), anywhere)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := parseAllowList("PROTOCOL.md", lines); err != nil || a.Len() != 2 {
		t.Errorf("the allow example: %v", err)
	}
	if !strings.Contains(string(b), testFingerprint(t).String()) {
		t.Error("PROTOCOL.md does not show the documented example fingerprint")
	}
}
