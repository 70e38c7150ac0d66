package neterr

import "golang.org/x/sys/windows"

var (
	addrInUse    = []error{windows.WSAEADDRINUSE}
	addrNotAvail = []error{windows.WSAEADDRNOTAVAIL}
	// ERROR_NETNAME_DELETED is how an overlapped read can report a reset.
	reset       = []error{windows.WSAECONNRESET, windows.WSAECONNABORTED, windows.WSAESHUTDOWN, windows.ERROR_NETNAME_DELETED, windows.ERROR_BROKEN_PIPE}
	refused     = []error{windows.WSAECONNREFUSED}
	unreachable = []error{windows.WSAEHOSTUNREACH, windows.WSAENETUNREACH}
	// WSAEACCES is also what a port reserved by Hyper-V or WinNAT gives.
	denied = []error{windows.WSAEACCES, windows.ERROR_ACCESS_DENIED}
)
