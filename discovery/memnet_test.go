package discovery

import (
	"net"
	"net/netip"
	"sync"
)

// memNet is an in-memory network of pconns, for running Advertiser and the browser end to
// end without sockets or root: every conn has one interface (index 2) on one LAN; a multicast
// packet reaches every conn, the sender's included (as multicast loopback does), a unicast
// one the conn with that address and port.
type memNet struct {
	mu    sync.Mutex
	conns []*memConn
	next  uint16
}

type memConn struct {
	net    *memNet
	addr   netip.AddrPort
	pkts   chan inPacket
	done   chan struct{}
	once   sync.Once
	ifaces []netIface
}

// conn attaches a host at 198.18.2.<last>: a responder on port 5353, a querier on an
// ephemeral port (its multicast is still received, as the browser's port-5353 socket does).
func (n *memNet) conn(last byte, querier bool) *memConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	port := uint16(mdnsPort)
	if querier {
		n.next++
		port = 40000 + n.next
	}
	a := netip.AddrFrom4([4]byte{198, 18, 2, last})
	c := &memConn{net: n, addr: netip.AddrPortFrom(a, port), pkts: make(chan inPacket, 1024), done: make(chan struct{}),
		ifaces: []netIface{{index: 2, name: "eth0", v4: true, prefixes: []netip.Prefix{netip.PrefixFrom(a, 24)}}}}
	n.conns = append(n.conns, c)
	return c
}

func (c *memConn) read() (inPacket, error) {
	select {
	case p := <-c.pkts:
		return p, nil
	case <-c.done:
		return inPacket{}, net.ErrClosed
	}
}

func (c *memConn) write(b []byte, ifIndex int, dst netip.AddrPort) error {
	select {
	case <-c.done:
		return net.ErrClosed
	default:
	}
	c.net.mu.Lock()
	conns := append([]*memConn(nil), c.net.conns...)
	c.net.mu.Unlock()
	for _, o := range conns {
		if dst.Addr().IsMulticast() || o.addr == dst {
			select {
			case o.pkts <- inPacket{b: append([]byte(nil), b...), ifIndex: ifIndex, src: c.addr}:
			case <-o.done:
			default: // a full queue drops, as a socket buffer does
			}
		}
	}
	return nil
}

func (c *memConn) interfaces() []netIface {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.ifaces
}

// setInterfaces changes what interfaces returns (an interface coming up or going away).
func (c *memConn) setInterfaces(ifs []netIface) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.ifaces = ifs
}

func (c *memConn) close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
