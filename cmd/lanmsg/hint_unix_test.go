//go:build unix

package main

import "syscall"

// blockedSendErrno is what a firewall rule makes a send fail with.
var blockedSendErrno = syscall.EPERM
