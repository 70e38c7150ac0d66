//go:build !linux

package discovery

import "syscall"

func groupControl(network, address string, c syscall.RawConn) error {
	return reuseControl(network, address, c)
}
