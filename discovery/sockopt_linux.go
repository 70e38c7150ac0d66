//go:build linux

package discovery

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// groupControl is reuseControl plus IP_MULTICAST_ALL=0 (IPV6_MULTICAST_ALL=0): a socket on
// port 5353 then receives group traffic only for the interfaces it joined itself, not for
// every membership any socket on the machine holds (avahi-daemon's, say), so --interface holds.
func groupControl(network, address string, c syscall.RawConn) error {
	if err := reuseControl(network, address, c); err != nil {
		return err
	}
	return c.Control(func(fd uintptr) {
		if network == "udp6" {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
		} else {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
		}
	})
}
