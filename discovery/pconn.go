package discovery

import (
	"net/netip"
)

// mdnsPort is the mDNS port; a query from any other port is "legacy unicast" (RFC 6762 section 6.7).
const mdnsPort = 5353

var (
	group4 = netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 251}), mdnsPort)
	group6 = netip.AddrPortFrom(netip.MustParseAddr("ff02::fb"), mdnsPort)
)

// pconn is what the responder and the browser need of the network: packets in and out, each
// with the index of its interface, and the interfaces in use with their addresses. sysConn is
// the real one (sockets); memNet's conns are an in-memory network for tests, so the protocol
// logic runs without root (memberlist's Transport and MockTransport are the model).
type pconn interface {
	// read blocks for the next packet; it fails once the conn is closed.
	read() (inPacket, error)
	// write sends b out of interface ifIndex to dst: group4 or group6 for multicast, or a
	// unicast address (a querier's).
	write(b []byte, ifIndex int, dst netip.AddrPort) error
	// interfaces lists the interfaces in use now, with their addresses. The real conn
	// re-reads the system's each time, following interfaces that come, change and go.
	interfaces() []netIface
	close() error
}

// inPacket is one received datagram.
type inPacket struct {
	b       []byte
	ifIndex int
	src     netip.AddrPort // link-local IPv6 sources carry their zone
}

// netIface is an interface mDNS runs on, as the protocol logic needs to know it.
type netIface struct {
	index    int
	name     string
	loopback bool
	v4, v6   bool           // the conn can send and receive this family on it
	prefixes []netip.Prefix // its addresses, unzoned, with their subnets
}
