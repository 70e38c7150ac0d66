//go:build unix

package main

import "syscall"

// raiseNofile raises the soft RLIMIT_NOFILE to the hard limit. Setting it
// explicitly (rather than relying on the Go runtime's own raise) makes child
// processes inherit the raised limit.
func raiseNofile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
