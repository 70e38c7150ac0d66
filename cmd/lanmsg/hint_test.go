package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestMulticastBlockedHint: when the first mDNS query cannot be sent for lack
// of permission (a firewall rule, macOS's Local Network privacy), browse,
// send and chat name the setting to change. The error is injected: making a
// real firewall refuse needs the machine's settings changed.
func TestMulticastBlockedHint(t *testing.T) {
	blocked := fmt.Errorf("discovery: browse: send query: lo: %w",
		&net.OpError{Op: "write", Net: "udp", Err: &os.SyscallError{Syscall: "sendmsg", Err: blockedSendErrno}})
	want := multicastBlockedHint(runtime.GOOS)
	for _, args := range [][]string{
		{"browse", "--timeout", "100ms"},
		{"send", "--browse-timeout", "100ms", "hello"},
		{"send", "--to", "kitchen", "--browse-timeout", "100ms", "hello"},
		{"chat", "--browse-timeout", "100ms"},
	} {
		code, out, errOut := runFake(t, &fakeLAN{err: blocked}, "", args...)
		if code != exitFailure || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 1 and nothing", args, code, out)
		}
		if !strings.Contains(errOut, "lanmsg: error: cannot look for servers over mDNS:") || !strings.Contains(errOut, "lanmsg: hint: "+want+"\n") {
			t.Errorf("%v: stderr does not give the hint %q:\n%s", args, want, errOut)
		}
	}

	// Any other failure keeps the general hint.
	code, _, errOut := runFake(t, &fakeLAN{err: fmt.Errorf("discovery: browse: %w", syscall.ENOBUFS)}, "", "browse")
	if code != exitFailure || strings.Contains(errOut, "firewall") || !strings.Contains(errOut, "lanmsg: hint: this machine needs a multicast-capable") {
		t.Errorf("browse with ENOBUFS: exit %d:\n%s", code, errOut)
	}
}

// TestMulticastBlockedHintPerOS: each system's hint names its own setting.
func TestMulticastBlockedHintPerOS(t *testing.T) {
	for goos, want := range map[string][]string{
		"darwin":  {"System Settings > Privacy & Security > Local Network", "--server"},
		"windows": {"Private", "UDP port 5353", "Windows Defender Firewall", "--server"},
		"linux":   {"ufw allow 5353/udp", "firewall-cmd --add-service=mdns", "--server"},
		"freebsd": {"UDP port 5353", "--server"},
	} {
		h := multicastBlockedHint(goos)
		for _, w := range want {
			if !strings.Contains(h, w) {
				t.Errorf("hint on %s does not mention %q: %s", goos, w, h)
			}
		}
	}
}
