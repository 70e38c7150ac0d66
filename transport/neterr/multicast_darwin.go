package neterr

import "syscall"

// multicastBlocked: macOS (15 and later) fails a multicast send with
// EHOSTUNREACH when the program has no Local Network permission.
var multicastBlocked = []error{syscall.EHOSTUNREACH}
