//go:build linux

package discovery

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// senderControl is reuseControl plus IP_MULTICAST_ALL=0: the send-only socket bound to
// 224.0.0.251:5353 must not queue copies of every mDNS packet (Linux delivers group traffic
// joined by any socket to all sockets bound to the group unless this is off).
func senderControl(network, address string, c syscall.RawConn) error {
	if err := reuseControl(network, address, c); err != nil {
		return err
	}
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	})
}
