package main

import (
	"errors"
	"strings"
	"testing"
)

// TestServerAddr: --server takes HOST:PORT, or a host or IP address alone
// with port 5050, IPv6 addresses included.
func TestServerAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.168.1.20", "192.168.1.20:5050"},
		{"192.168.1.20:6000", "192.168.1.20:6000"},
		{"kitchen.local", "kitchen.local:5050"},
		{"fd00::11", "[fd00::11]:5050"},
		{"[fd00::11]", "[fd00::11]:5050"},
		{"[fd00::11]:6000", "[fd00::11]:6000"},
		{"fe80::1%eth0", "[fe80::1%eth0]:5050"},
		{"::1", "[::1]:5050"},
	} {
		got, err := serverAddr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"a:b:c", ":5050", "[fd00::11", "host:port"} {
		got, err := serverAddr(bad)
		var ce *cliError
		if !errors.As(err, &ce) || ce.code != exitUsage {
			t.Errorf("serverAddr(%q) = %q, %v; want a usage error", bad, got, err)
		}
	}
}

// TestCheckName: a name of 63 bytes is one DNS label and passes; one byte
// more is refused rather than cut.
func TestCheckName(t *testing.T) {
	if err := checkName(strings.Repeat("x", 63)); err != nil {
		t.Errorf("63 bytes: %v", err)
	}
	if err := checkName(""); err != nil {
		t.Errorf("no name (the hostname): %v", err)
	}
	var ce *cliError
	if err := checkName(strings.Repeat("x", 64)); !errors.As(err, &ce) || ce.code != exitUsage || ce.hint == "" {
		t.Errorf("64 bytes: %v, want a usage error with a hint", err)
	}
}
