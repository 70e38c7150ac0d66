package neterr

import "errors"

// AddrInUse reports whether err means the address (usually the port) is
// already taken by another socket.
func AddrInUse(err error) bool { return isAny(err, addrInUse) }

// AddrNotAvailable reports whether err means the local address is not one of
// this machine's.
func AddrNotAvailable(err error) bool { return isAny(err, addrNotAvail) }

// Reset reports whether err means the connection was reset or aborted, or
// written to after the peer closed it (a broken pipe).
func Reset(err error) bool { return isAny(err, reset) }

// Refused reports whether err means nothing listens at the address dialled.
func Refused(err error) bool { return isAny(err, refused) }

// Unreachable reports whether err means no route leads to the host or its
// network.
func Unreachable(err error) bool { return isAny(err, unreachable) }

// Denied reports whether err means the system refused the operation for lack
// of permission: a port below 1024, or a firewall rule.
func Denied(err error) bool { return isAny(err, denied) }

// MulticastBlocked reports whether err, from sending a multicast packet,
// means that a permission or a firewall blocks it: EACCES or EPERM (a
// firewall rule), and on macOS EHOSTUNREACH, which is how its Local Network
// privacy setting refuses an application.
func MulticastBlocked(err error) bool { return isAny(err, denied) || isAny(err, multicastBlocked) }

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
