//go:build unix

package neterr

import "syscall"

var (
	addrInUse    = []error{syscall.EADDRINUSE}
	addrNotAvail = []error{syscall.EADDRNOTAVAIL}
	reset        = []error{syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE}
	refused      = []error{syscall.ECONNREFUSED}
	unreachable  = []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH}
	denied       = []error{syscall.EACCES, syscall.EPERM}
)
