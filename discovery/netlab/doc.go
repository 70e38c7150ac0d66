// Package netlab is test support for code that multicasts: it runs tests inside private network
// namespaces so that no packet can leave the machine.
//
//   - Solo re-executes the current test inside a fresh network namespace whose loopback
//     carries multicast (like `/work/shared/netlab solo`).
//   - Up builds a small LAN of namespaces ("hosts" at 198.18.0.11, .12, ... on a bridge in a
//     switch namespace, like `netlab up`), with per-host /etc/hosts and hostnames, and removes
//     it (killing every process inside) when the test ends.
//   - Lab.StartAvahi runs a private D-Bus and avahi-daemon on one host, for interop tests.
//
// Everything needs root; without it (or without iproute2/unshare) the test is skipped with
// the reason.
package netlab
