//go:build !linux

package discovery

import "syscall"

func senderControl(network, address string, c syscall.RawConn) error {
	return reuseControl(network, address, c)
}
