//go:build unix

package neterr

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// A blocked multicast send cannot be provoked without changing the machine's
// firewall or privacy settings, so it is checked against the errnos the
// systems document, wrapped as the net package wraps them.
func TestMulticastBlocked(t *testing.T) {
	wrap := func(e syscall.Errno) error {
		return fmt.Errorf("discovery: %w", &net.OpError{Op: "write", Net: "udp", Err: &os.SyscallError{Syscall: "sendto", Err: e}})
	}
	for _, e := range []syscall.Errno{syscall.EACCES, syscall.EPERM} {
		if !MulticastBlocked(wrap(e)) {
			t.Errorf("MulticastBlocked(%v) = false", e)
		}
	}
	// EHOSTUNREACH is macOS's Local Network refusal; elsewhere it is a
	// missing route, not a permission.
	if got, want := MulticastBlocked(wrap(syscall.EHOSTUNREACH)), runtime.GOOS == "darwin"; got != want {
		t.Errorf("MulticastBlocked(EHOSTUNREACH) = %v on %s, want %v", got, runtime.GOOS, want)
	}
	if MulticastBlocked(wrap(syscall.ENOBUFS)) {
		t.Error("MulticastBlocked(ENOBUFS) = true")
	}
}
