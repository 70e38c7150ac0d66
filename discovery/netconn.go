package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var errAddrInUse error = syscall.EADDRINUSE // joining a group joined already

// sysConn is the real pconn. Per address family it has one socket on port 5353 (bound to the
// wildcard address with SO_REUSEADDR/SO_REUSEPORT, so it coexists with avahi-daemon and other
// mDNS stacks), which joins 224.0.0.251 or ff02::fb on each interface in use, and learns from
// IP_PKTINFO/IPV6_PKTINFO which interface each packet came in on; every packet goes out with
// its interface chosen the same way. A querier (the browser) also has an ephemeral-port socket
// per family, from which it sends its queries: responders answer those directly ("legacy
// unicast", RFC 6762 section 6.7), so the answers reach it at once even when other processes
// share port 5353. interfaces re-reads the system's interfaces and joins the groups on new
// ones, so a caller that polls it follows interfaces that come and go.
type sysConn struct {
	log     *zerolog.Logger
	only    []string // interface names; empty: every interface that is up and multicast-capable
	querier bool

	p4    *ipv4.PacketConn // port 5353, IPv4; nil if it could not be bound
	g6    *ipv6.PacketConn // port 5353, IPv6; nil if it could not be bound
	q4    *ipv4.PacketConn // ephemeral port, IPv4 (querier only)
	q6c   *ipv6.PacketConn // ephemeral port, IPv6 (querier only)
	socks []net.PacketConn

	pkts chan inPacket
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu     sync.Mutex
	joined map[int]netIface // by index: the interfaces in use
}

// openSysConn opens the sockets. only restricts mDNS to the named interfaces.
func openSysConn(only []string, querier bool, log *zerolog.Logger) (*sysConn, error) {
	c := &sysConn{log: log, only: only, querier: querier, pkts: make(chan inPacket, 256),
		done: make(chan struct{}), joined: map[int]netIface{}}
	lc := net.ListenConfig{Control: groupControl}
	if pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:5353"); err != nil {
		log.Debug().Err(err).Msg("discovery: cannot bind 0.0.0.0:5353")
	} else {
		c.socks = append(c.socks, pc)
		c.p4 = ipv4.NewPacketConn(pc)
		_ = c.p4.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
		_ = c.p4.SetMulticastTTL(255) // RFC 6762 section 11
		_ = c.p4.SetMulticastLoopback(true)
	}
	if pc, err := lc.ListenPacket(context.Background(), "udp6", "[::]:5353"); err != nil {
		log.Debug().Err(err).Msg("discovery: cannot bind [::]:5353")
	} else {
		c.socks = append(c.socks, pc)
		c.g6 = ipv6.NewPacketConn(pc)
		_ = c.g6.SetControlMessage(ipv6.FlagInterface, true)
		_ = c.g6.SetMulticastHopLimit(255)
		_ = c.g6.SetMulticastLoopback(true)
	}
	if querier {
		if pc, err := net.ListenPacket("udp4", "0.0.0.0:0"); err == nil {
			c.socks = append(c.socks, pc)
			c.q4 = ipv4.NewPacketConn(pc)
			_ = c.q4.SetControlMessage(ipv4.FlagInterface, true)
			_ = c.q4.SetMulticastTTL(255)
			_ = c.q4.SetMulticastLoopback(true)
		}
		if pc, err := net.ListenPacket("udp6", "[::]:0"); err == nil {
			c.socks = append(c.socks, pc)
			c.q6c = ipv6.NewPacketConn(pc)
			_ = c.q6c.SetControlMessage(ipv6.FlagInterface, true)
			_ = c.q6c.SetMulticastHopLimit(255)
			_ = c.q6c.SetMulticastLoopback(true)
		}
		if c.q4 == nil && c.q6c == nil {
			_ = c.close()
			return nil, errors.New("cannot open a UDP socket for queries")
		}
	} else if c.p4 == nil && c.g6 == nil {
		return nil, errors.New("cannot bind UDP port 5353 (IPv4 or IPv6)")
	}
	if len(c.interfaces()) == 0 {
		_ = c.close()
		if len(only) > 0 {
			return nil, fmt.Errorf("interface %v is not up, or cannot carry multicast", only)
		}
		return nil, errors.New("no multicast-capable interface is up")
	}
	for _, s := range []*ipv4.PacketConn{c.p4, c.q4} {
		if s != nil {
			c.wg.Add(1)
			go c.read4(s)
		}
	}
	for _, s := range []*ipv6.PacketConn{c.g6, c.q6c} {
		if s != nil {
			c.wg.Add(1)
			go c.read6(s)
		}
	}
	return c, nil
}

// interfaces lists the interfaces in use, joining the groups on new ones.
func (c *sysConn) interfaces() []netIface {
	list, err := net.Interfaces()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	present := map[int]bool{}
	var out []netIface
	for i := range list {
		ifi := &list[i]
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if len(c.only) > 0 && !slices.Contains(c.only, ifi.Name) {
			continue
		}
		ni, ok := c.joined[ifi.Index]
		if !ok || ni.name != ifi.Name {
			ni = netIface{index: ifi.Index, name: ifi.Name, loopback: ifi.Flags&net.FlagLoopback != 0}
			if c.p4 != nil {
				err := c.p4.JoinGroup(ifi, &net.UDPAddr{IP: group4.Addr().AsSlice()})
				ni.v4 = err == nil || errors.Is(err, errAddrInUse)
				if err != nil && !ni.v4 {
					c.log.Debug().Err(err).Str("iface", ifi.Name).Msg("discovery: join 224.0.0.251")
				}
			} else {
				ni.v4 = c.q4 != nil
			}
			switch {
			case ni.loopback:
				ni.v6 = false // Linux routes no IPv6 multicast over lo
			case c.g6 != nil:
				err := c.g6.JoinGroup(ifi, &net.UDPAddr{IP: group6.Addr().AsSlice()})
				ni.v6 = err == nil || errors.Is(err, errAddrInUse)
				if err != nil && !ni.v6 {
					c.log.Debug().Err(err).Str("iface", ifi.Name).Msg("discovery: join ff02::fb")
				}
			default:
				ni.v6 = c.q6c != nil
			}
		}
		ni.prefixes = ni.prefixes[:0:0]
		if as, err := ifi.Addrs(); err == nil {
			for _, a := range as {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					ni.prefixes = append(ni.prefixes, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
				}
			}
		}
		c.joined[ifi.Index] = ni
		present[ifi.Index] = true
		out = append(out, ni)
	}
	for idx := range c.joined {
		if !present[idx] {
			delete(c.joined, idx) // a deleted interface takes its memberships with it
			if ifi, err := net.InterfaceByIndex(idx); err == nil {
				if c.p4 != nil {
					_ = c.p4.LeaveGroup(ifi, &net.UDPAddr{IP: group4.Addr().AsSlice()})
				}
				if c.g6 != nil {
					_ = c.g6.LeaveGroup(ifi, &net.UDPAddr{IP: group6.Addr().AsSlice()})
				}
			}
		}
	}
	return out
}

func (c *sysConn) inUse(idx int) (netIface, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.joined[idx]
	return ni, ok
}

func (c *sysConn) deliver(b []byte, ifIndex int, src netip.AddrPort) bool {
	if _, ok := c.inUse(ifIndex); !ok {
		return true // not an interface we use (--interface)
	}
	select {
	case c.pkts <- inPacket{b: b, ifIndex: ifIndex, src: src}:
		return true
	case <-c.done:
		return false
	}
}

func (c *sysConn) read4(p *ipv4.PacketConn) {
	defer c.wg.Done()
	for {
		buf := make([]byte, 9000)
		n, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok || cm == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		if !c.deliver(buf[:n], cm.IfIndex, netip.AddrPortFrom(a.Unmap(), uint16(ua.Port))) {
			return
		}
	}
}

func (c *sysConn) read6(p *ipv6.PacketConn) {
	defer c.wg.Done()
	for {
		buf := make([]byte, 9000)
		n, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok || cm == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		if a.Is4In6() {
			continue
		}
		if a.IsLinkLocalUnicast() {
			if ni, ok := c.inUse(cm.IfIndex); ok {
				a = a.WithZone(ni.name)
			}
		}
		if !c.deliver(buf[:n], cm.IfIndex, netip.AddrPortFrom(a, uint16(ua.Port))) {
			return
		}
	}
}

func (c *sysConn) read() (inPacket, error) {
	select {
	case p := <-c.pkts:
		return p, nil
	case <-c.done:
		return inPacket{}, net.ErrClosed
	}
}

// write sends b on interface ifIndex: from the ephemeral socket for a querier, else from
// port 5353.
func (c *sysConn) write(b []byte, ifIndex int, dst netip.AddrPort) error {
	ni, ok := c.inUse(ifIndex)
	if !ok {
		return fmt.Errorf("interface %d is not in use", ifIndex)
	}
	if dst.Addr().Unmap().Is4() {
		p := c.p4
		if c.querier {
			p = c.q4
		}
		if p == nil {
			return errors.New("no IPv4 socket")
		}
		cm := &ipv4.ControlMessage{IfIndex: ifIndex}
		if ni.loopback {
			// 127.0.0.1 is host-scoped, so the kernel would send from 0.0.0.0 on lo.
			cm.Src = net.IPv4(127, 0, 0, 1)
		}
		_, err := p.WriteTo(b, cm, &net.UDPAddr{IP: dst.Addr().Unmap().AsSlice(), Port: int(dst.Port())})
		return err
	}
	p := c.g6
	if c.querier {
		p = c.q6c
	}
	if p == nil {
		return errors.New("no IPv6 socket")
	}
	cm := &ipv6.ControlMessage{IfIndex: ifIndex, HopLimit: 255}
	ua := &net.UDPAddr{IP: dst.Addr().AsSlice(), Port: int(dst.Port())}
	if dst.Addr().IsLinkLocalUnicast() || dst.Addr().IsLinkLocalMulticast() {
		ua.Zone = ni.name
	}
	_, err := p.WriteTo(b, cm, ua)
	return err
}

func (c *sysConn) close() error {
	c.once.Do(func() {
		close(c.done)
		for _, s := range c.socks {
			_ = s.Close()
		}
		c.wg.Wait()
	})
	return nil
}
