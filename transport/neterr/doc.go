// Package neterr classifies socket errors the same way on every operating
// system.
//
// The syscall package's errno constants only match Unix errors: on Windows a
// connection reset is WSAECONNRESET (10054), which errors.Is(err,
// syscall.ECONNRESET) never matches, and macOS reports a multicast send that
// its Local Network privacy setting blocks as EHOSTUNREACH. Each function here
// answers one question ("is the address in use?", "did the peer reset the
// connection?") with the errno values of the system it was built for, kept in
// build-tagged tables.
//
// It lives under transport, beside the code that meets these errors first,
// and imports nothing of lanmsg, so that session (resets while sending), cmd
// (a port in use, a refused connection) and discovery (a blocked multicast
// send) can all use it without an import cycle.
package neterr
