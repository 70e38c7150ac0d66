package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/net/ipv4"
)

var group4Addr = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// transport sends mDNS queries and receives the answers. Queries go out from an ephemeral
// port ("legacy unicast", RFC 6762 section 6.7), so every responder -- avahi, python-zeroconf,
// Bonjour and hashicorp/mdns (which answers even multicast questions by unicast to the
// sender) -- replies directly to that socket: received at once, and never stolen by another
// process's socket on port 5353. A second socket bound to 224.0.0.251:5353 (shared via
// SO_REUSEADDR/SO_REUSEPORT) receives multicast responses and announcements. IPv4 only.
type transport struct {
	log    *zerolog.Logger
	ifaces []net.Interface
	ucast  *net.UDPConn
	upc    *ipv4.PacketConn
	mcast  *net.UDPConn // nil if port 5353 could not be bound
	pkts   chan *packet
	done   chan struct{}
	mu     sync.Mutex // serialises SetMulticastInterface+WriteTo
	wg     sync.WaitGroup
	once   sync.Once
}

func openTransport(only *net.Interface, log *zerolog.Logger) (*transport, error) {
	ifaces := multicastInterfaces(only)
	if len(ifaces) == 0 {
		return nil, errors.New("no multicast-capable interface is up")
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("listen udp4: %w", err)
	}
	t := &transport{
		log: log, ifaces: ifaces, ucast: uc, upc: ipv4.NewPacketConn(uc),
		pkts: make(chan *packet, 128), done: make(chan struct{}),
	}
	_ = t.upc.SetMulticastTTL(255) // RFC 6762 section 11
	_ = t.upc.SetMulticastLoopback(true)

	mc, err := listenGroup(ifaces, log)
	if err != nil {
		// Unicast answers to our queries still arrive; only unsolicited announcements are missed.
		log.Debug().Err(err).Msg("discovery: multicast listener unavailable, relying on unicast replies")
	} else {
		t.mcast = mc
	}
	t.wg.Add(1)
	go t.read(t.ucast)
	if t.mcast != nil {
		t.wg.Add(1)
		go t.read(t.mcast)
	}
	return t, nil
}

// listenGroup binds 224.0.0.251:5353 with address/port reuse and joins the group on ifaces.
func listenGroup(ifaces []net.Interface, log *zerolog.Logger) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: reuseControl}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "224.0.0.251:5353")
	if err != nil {
		return nil, fmt.Errorf("bind 224.0.0.251:5353: %w", err)
	}
	c := pc.(*net.UDPConn)
	p := ipv4.NewPacketConn(c)
	joined := 0
	for i := range ifaces {
		if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: group4Addr.IP}); err != nil {
			log.Debug().Err(err).Str("iface", ifaces[i].Name).Msg("discovery: join 224.0.0.251")
			continue
		}
		joined++
	}
	if joined == 0 {
		_ = c.Close()
		return nil, errors.New("could not join 224.0.0.251 on any interface")
	}
	return c, nil
}

// openSender opens a socket for unsolicited multicast responses (announcements, goodbyes).
// They must come from source port 5353 (avahi ignores responses from other ports), so it binds
// 224.0.0.251:5353 with reuse; it joins nothing and is never read.
func openSender() (*net.UDPConn, *ipv4.PacketConn, error) {
	lc := net.ListenConfig{Control: senderControl}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "224.0.0.251:5353")
	if err != nil {
		return nil, nil, fmt.Errorf("bind 224.0.0.251:5353: %w", err)
	}
	c := pc.(*net.UDPConn)
	p := ipv4.NewPacketConn(c)
	_ = p.SetMulticastTTL(255)
	_ = p.SetMulticastLoopback(true)
	return c, p, nil
}

// sendMulticast writes b to 224.0.0.251:5353 once on every interface in ifaces (or the
// default interface if the list is empty). It fails only if no copy could be sent.
func sendMulticast(mu *sync.Mutex, p *ipv4.PacketConn, ifaces []net.Interface, b []byte) error {
	mu.Lock()
	defer mu.Unlock()
	if len(ifaces) == 0 {
		_, err := p.WriteTo(b, nil, group4Addr)
		return err
	}
	var firstErr error
	sent := 0
	for i := range ifaces {
		err := p.SetMulticastInterface(&ifaces[i])
		if err == nil {
			var cm *ipv4.ControlMessage
			if ifaces[i].Flags&net.FlagLoopback != 0 {
				// 127.0.0.1 is host-scoped, so the kernel would send from 0.0.0.0 on lo.
				cm = &ipv4.ControlMessage{Src: net.IPv4(127, 0, 0, 1)}
			}
			_, err = p.WriteTo(b, cm, group4Addr)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", ifaces[i].Name, err)
			}
			continue
		}
		sent++
	}
	if sent == 0 {
		return firstErr
	}
	return nil
}

// send multicasts a query from the unicast socket.
func (t *transport) send(b []byte) error { return sendMulticast(&t.mu, t.upc, t.ifaces, b) }

func (t *transport) read(c *net.UDPConn) {
	defer t.wg.Done()
	buf := make([]byte, 9000)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p, err := parsePacket(buf[:n])
		if err != nil {
			t.log.Debug().Err(err).Str("from", src.String()).Msg("discovery: unreadable packet")
			continue
		}
		if p.skipped > 0 || p.trailErr != nil {
			t.log.Debug().Int("skipped", p.skipped).AnErr("stopped", p.trailErr).Str("from", src.String()).Msg("discovery: kept the readable records of a partly malformed packet")
		}
		p.src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		t.log.Debug().Str("from", p.src.String()).Bool("response", p.response).Int("records", len(p.records)).Msg("discovery: packet")
		select {
		case t.pkts <- p:
		case <-t.done:
			return
		}
	}
}

func (t *transport) close() {
	t.once.Do(func() {
		close(t.done)
		_ = t.ucast.Close()
		if t.mcast != nil {
			_ = t.mcast.Close()
		}
		t.wg.Wait()
	})
}
