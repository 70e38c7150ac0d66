//go:build !unix

package discovery

import "syscall"

func reuseControl(network, address string, c syscall.RawConn) error { return nil }
