package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var errAddrInUse error = syscall.EADDRINUSE // joining a group joined already

// sysConn is the real pconn. Its IPv4 socket is bound to 224.0.0.251:5353 and joins the group
// on each interface in use, learning from IP_PKTINFO which interface a packet came in on; its
// IPv6 sockets are one per interface, each bound to [ff02::fb%IFACE]:5353. Bound to the group
// addresses (with SO_REUSEADDR/SO_REUSEPORT, so they coexist with avahi-daemon and other mDNS
// stacks), they receive multicast only and never take a unicast answer meant for another
// process on the port. Every packet goes out on the interface it is for. A querier (the
// browser) also has an ephemeral-port socket per family, from which it sends its queries:
// responders answer those directly ("legacy unicast", RFC 6762 section 6.7), so the answers
// reach it at once even when other processes share port 5353. interfaces re-reads the
// system's interfaces, joining the groups on new ones and leaving those gone, so a caller
// that polls it follows interfaces that come and go.
type sysConn struct {
	log     *zerolog.Logger
	only    []string // interface names; empty: every interface that is up and multicast-capable
	querier bool

	p4    *ipv4.PacketConn         // 224.0.0.251:5353; nil if it could not be bound
	g6    map[int]*ipv6.PacketConn // [ff02::fb%IFACE]:5353 by interface index; guarded by mu
	q4    *ipv4.PacketConn         // ephemeral port, IPv4 (querier only)
	q6c   *ipv6.PacketConn         // ephemeral port, IPv6 (querier only)
	socks []net.PacketConn

	pkts chan inPacket
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu     sync.Mutex
	joined map[int]netIface // by index: the interfaces in use
	wmu    sync.Mutex       // serialises setting the multicast interface and writing (not on Linux)
}

// openSysConn opens the sockets. only restricts mDNS to the named interfaces; the groups are
// joined on them by the first call to interfaces (check it with usableIfaces).
func openSysConn(only []string, querier bool, log *zerolog.Logger) (*sysConn, error) {
	c := &sysConn{log: log, only: only, querier: querier, pkts: make(chan inPacket, 256),
		done: make(chan struct{}), joined: map[int]netIface{}, g6: map[int]*ipv6.PacketConn{}}
	lc := net.ListenConfig{Control: groupControl}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "224.0.0.251:5353")
	if err != nil {
		// Windows cannot bind a multicast address: the wildcard is its way.
		log.Debug().Err(err).Msg("discovery: cannot bind 224.0.0.251:5353; trying 0.0.0.0:5353")
		pc, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:5353")
	}
	if err != nil {
		log.Debug().Err(err).Msg("discovery: cannot bind UDP port 5353 over IPv4")
	} else {
		c.socks = append(c.socks, pc)
		c.p4 = ipv4.NewPacketConn(pc)
		_ = c.p4.SetControlMessage(ipv4.FlagInterface, true)
		_ = c.p4.SetMulticastTTL(255) // RFC 6762 section 11
		_ = c.p4.SetMulticastLoopback(true)
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
	}
	for _, s := range []*ipv4.PacketConn{c.p4, c.q4} {
		if s != nil {
			c.wg.Add(1)
			go c.read4(s)
		}
	}
	if c.q6c != nil {
		c.wg.Add(1)
		go c.read6(c.q6c, 0)
	}
	return c, nil
}

// usableIfaces checks the first listing of a conn's interfaces: there must be one it can use.
func usableIfaces(ifs []netIface, only []string) error {
	for _, ifc := range ifs {
		if ifc.v4 || ifc.v6 {
			return nil
		}
	}
	switch {
	case len(ifs) == 0 && len(only) > 0:
		return fmt.Errorf("interface %v is not up, or cannot carry multicast", only)
	case len(ifs) == 0:
		return errors.New("no multicast-capable interface is up (or none of those asked for)")
	}
	return errors.New("cannot use UDP port 5353 on any interface (IPv4 or IPv6)")
}

// open6 opens the IPv6 socket of interface ifi, bound to [ff02::fb%IFACE]:5353 and joined.
// Called with c.mu held.
func (c *sysConn) open6(ifi *net.Interface) bool {
	lc := net.ListenConfig{Control: groupControl}
	pc, err := lc.ListenPacket(context.Background(), "udp6", "[ff02::fb%"+ifi.Name+"]:5353")
	if err != nil {
		c.log.Debug().Err(err).Str("iface", ifi.Name).Msg("discovery: cannot bind [ff02::fb]:5353")
		return false
	}
	p := ipv6.NewPacketConn(pc)
	if err := p.JoinGroup(ifi, &net.UDPAddr{IP: group6.Addr().AsSlice()}); err != nil {
		c.log.Debug().Err(err).Str("iface", ifi.Name).Msg("discovery: join ff02::fb")
		_ = pc.Close()
		return false
	}
	_ = p.SetMulticastInterface(ifi)
	_ = p.SetMulticastHopLimit(255)
	_ = p.SetMulticastLoopback(true)
	c.g6[ifi.Index] = p
	c.wg.Add(1)
	go c.read6(p, ifi.Index)
	return true
}

// interfaces lists the interfaces in use, joining the groups on new ones.
func (c *sysConn) interfaces() []netIface {
	list, err := net.Interfaces()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	default:
	}
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
			c.leave(ifi.Index)
			ni = netIface{index: ifi.Index, name: ifi.Name, loopback: ifi.Flags&net.FlagLoopback != 0}
			if c.p4 != nil {
				err := c.p4.JoinGroup(ifi, &net.UDPAddr{IP: group4.Addr().AsSlice()})
				ni.v4 = err == nil || errors.Is(err, errAddrInUse)
				if !ni.v4 {
					c.log.Debug().Err(err).Str("iface", ifi.Name).Msg("discovery: join 224.0.0.251")
				}
			}
			// Linux routes no IPv6 multicast over lo.
			ni.v6 = !ni.loopback && c.open6(ifi)
			if c.querier {
				ni.v4 = ni.v4 || c.q4 != nil
				ni.v6 = !ni.loopback && (ni.v6 || c.q6c != nil)
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
			c.leave(idx)
		}
	}
	return out
}

// leave stops using interface idx (a deleted interface takes its memberships with it).
// Called with c.mu held.
func (c *sysConn) leave(idx int) {
	if _, ok := c.joined[idx]; !ok {
		return
	}
	delete(c.joined, idx)
	if p := c.g6[idx]; p != nil {
		_ = p.Close()
		delete(c.g6, idx)
	}
	if ifi, err := net.InterfaceByIndex(idx); err == nil && c.p4 != nil {
		_ = c.p4.LeaveGroup(ifi, &net.UDPAddr{IP: group4.Addr().AsSlice()})
	}
}

func (c *sysConn) inUse(idx int) (netIface, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.joined[idx]
	return ni, ok
}

// ifaceFor is the interface a packet from src came in on when the system does not say: the
// one whose subnet holds src, or the only one in use; 0 if that cannot be told.
func ifaceFor(src netip.Addr, ifs map[int]netIface) int {
	for idx, ifc := range ifs {
		for _, p := range ifc.prefixes {
			if p.Contains(src) {
				return idx
			}
		}
	}
	if len(ifs) == 1 {
		for idx := range ifs {
			return idx
		}
	}
	return 0
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
		if !ok {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		a = a.Unmap()
		idx := 0
		if cm != nil {
			idx = cm.IfIndex
		}
		if idx == 0 {
			// No IP_PKTINFO (Windows): the interface whose subnet holds the source.
			c.mu.Lock()
			idx = ifaceFor(a, c.joined)
			c.mu.Unlock()
		}
		if !c.deliver(buf[:n], idx, netip.AddrPortFrom(a, uint16(ua.Port))) {
			return
		}
	}
}

// read6 reads an IPv6 socket: the one of interface ifIndex, or (0) the querier's, whose
// packets' interface comes from IPV6_PKTINFO.
func (c *sysConn) read6(p *ipv6.PacketConn, ifIndex int) {
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
		idx := ifIndex
		if idx == 0 && cm != nil {
			idx = cm.IfIndex
		}
		if !ok {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		if a.Is4In6() {
			continue
		}
		if idx == 0 {
			// No IPV6_PKTINFO (Windows): the source's zone, or its subnet.
			if ifi, err := net.InterfaceByName(ua.Zone); ua.Zone != "" && err == nil {
				idx = ifi.Index
			} else {
				c.mu.Lock()
				idx = ifaceFor(a, c.joined)
				c.mu.Unlock()
			}
		}
		if a.IsLinkLocalUnicast() {
			if ni, ok := c.inUse(idx); ok {
				a = a.WithZone(ni.name)
			}
		}
		if !c.deliver(buf[:n], idx, netip.AddrPortFrom(a, uint16(ua.Port))) {
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
		if runtime.GOOS != "linux" && dst.Addr().IsMulticast() {
			// Not every system takes the interface from the control message (Windows
			// ignores it, FreeBSD has no field for it): set it on the socket, one
			// writer at a time.
			c.wmu.Lock()
			defer c.wmu.Unlock()
			if ifi, err := net.InterfaceByIndex(ifIndex); err == nil {
				_ = p.SetMulticastInterface(ifi)
			}
		}
		_, err := p.WriteTo(b, cm, &net.UDPAddr{IP: dst.Addr().Unmap().AsSlice(), Port: int(dst.Port())})
		return err
	}
	c.mu.Lock()
	p := c.g6[ifIndex]
	c.mu.Unlock()
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
		c.mu.Lock()
		close(c.done)
		for _, s := range c.socks {
			_ = s.Close()
		}
		for _, p := range c.g6 {
			_ = p.Close()
		}
		c.mu.Unlock()
		c.wg.Wait()
	})
	return nil
}
