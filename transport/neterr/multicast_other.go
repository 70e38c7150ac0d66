//go:build !darwin

package neterr

// multicastBlocked: elsewhere a blocked multicast send is EACCES or EPERM
// (see denied); EHOSTUNREACH means what it says.
var multicastBlocked []error
