//go:build !unix && !windows

package neterr

// Systems without BSD sockets' errnos (plan9, js, wasip1): nothing is
// recognised, and callers fall back to their generic message.
var addrInUse, addrNotAvail, reset, refused, unreachable, denied []error
