package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/rs/zerolog"
	"golang.org/x/net/ipv4"
)

const (
	probeCount    = 3                      // RFC 6762 section 8.1
	probeInterval = 250 * time.Millisecond // between probes, and after the last one
	announceCount = 3
	announceEvery = time.Second
	maxRenames    = 100
)

// AdvertiseConfig configures Advertise.
type AdvertiseConfig struct {
	Instance  string            // wanted instance name; default Hostname
	Hostname  string            // default os.Hostname() (first label); host record is <Hostname>.local.
	Port      int               // required
	Addrs     []netip.Addr      // override (--advertise-addr); if empty: DefaultAddrs
	TXT       map[string]string // caller's extra TXT; "v" and "id" are set by Advertise
	Interface *net.Interface    // optional: restrict mDNS to this interface
	Log       *zerolog.Logger   // required; the address choice at info, hashicorp/mdns and packet details at debug
}

// Advertiser is a running advertisement. Close withdraws it.
type Advertiser struct {
	log     *zerolog.Logger
	svc     Service
	zone    *zone
	server  *mdns.Server
	sender  *net.UDPConn // nil if announcements could not be set up
	spc     *ipv4.PacketConn
	ifaces  []net.Interface
	sendMu  sync.Mutex
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closeEr error
}

// Advertise probes for name conflicts, then starts answering and announces. It returns once
// the service is being answered; announcements continue in the background.
func Advertise(ctx context.Context, cfg AdvertiseConfig) (*Advertiser, error) {
	if cfg.Log == nil {
		return nil, errors.New("discovery: advertise: Log is required")
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("discovery: advertise: invalid port %d", cfg.Port)
	}
	log := cfg.Log
	hostname := cfg.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("discovery: advertise: hostname: %w", err)
		}
		hostname = h
	}
	hostLabel, _, _ := strings.Cut(strings.TrimSuffix(hostname, "."), ".")
	if hostLabel == "" {
		return nil, fmt.Errorf("discovery: advertise: invalid hostname %q", hostname)
	}
	hostLabel = truncateLabel(hostLabel, maxLabel)
	instance := cfg.Instance
	if instance == "" {
		instance = hostLabel
	}
	instance = truncateLabel(instance, maxLabel)

	addrs := sortAddrs(cfg.Addrs)
	if len(addrs) == 0 {
		var reason string
		var err error
		addrs, reason, err = defaultAddrs(ctx, hostname, cfg.Interface, log)
		if err != nil {
			return nil, fmt.Errorf("discovery: advertise: %w", err)
		}
		log.Info().Strs("addrs", addrStrings(addrs)).Str("reason", reason).Msg("choosing the addresses to advertise")
	}

	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("discovery: advertise: server id: %w", err)
	}
	txt := map[string]string{}
	for k, v := range cfg.TXT {
		txt[strings.ToLower(k)] = v
	}
	txt["v"] = protoVer
	txt["id"] = hex.EncodeToString(idb[:])

	z := &zone{port: uint16(cfg.Port), addrs: addrs, txt: formatTXT(txt)}
	instance, hostLabel, err := probeNames(ctx, cfg.Interface, log, z, instance, hostLabel)
	if err != nil {
		return nil, fmt.Errorf("discovery: probe: %w", err)
	}
	z.instance, z.host = instanceFQDN(instance), hostFQDN(hostLabel)

	srv, err := mdns.NewServer(&mdns.Config{Zone: z, Iface: cfg.Interface, Logger: stdLogger(log)})
	if err != nil {
		return nil, fmt.Errorf("discovery: advertise: start responder: %w", err)
	}
	a := &Advertiser{
		log:  log,
		zone: z,
		svc: Service{
			Instance: instance, Host: z.host, Addrs: addrs, Port: cfg.Port, TXT: txt,
		},
		server: srv,
		ifaces: multicastInterfaces(cfg.Interface),
		stop:   make(chan struct{}),
	}
	if a.sender, a.spc, err = openSender(); err != nil {
		log.Warn().Err(err).Msg("discovery: cannot send announcements; answering queries only")
	} else {
		a.wg.Add(1)
		go a.announce()
	}
	log.Debug().Str("instance", instance).Str("host", z.host).Strs("addrs", addrStrings(addrs)).
		Int("port", cfg.Port).Str("id", txt["id"]).Msg("discovery: advertising")
	return a, nil
}

// Service returns what is advertised: final instance and host names, addresses, TXT with id.
func (a *Advertiser) Service() Service {
	s := a.svc
	s.Addrs = append([]netip.Addr(nil), a.svc.Addrs...)
	s.TXT = make(map[string]string, len(a.svc.TXT))
	for k, v := range a.svc.TXT {
		s.TXT[k] = v
	}
	return s
}

// announce sends the unsolicited announcements (RFC 6762 section 8.3) until stopped.
func (a *Advertiser) announce() {
	defer a.wg.Done()
	b, err := a.zone.announcement().Pack()
	if err != nil {
		a.log.Debug().Err(err).Msg("discovery: pack announcement")
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; i < announceCount; i++ {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		if err := sendMulticast(&a.sendMu, a.spc, a.ifaces, b); err != nil {
			a.log.Debug().Err(err).Msg("discovery: send announcement")
		}
		t.Reset(announceEvery)
	}
}

// Close stops answering, sends a goodbye (TTL 0) for the instance, and releases the sockets.
// It is safe to call more than once.
func (a *Advertiser) Close() error {
	a.once.Do(func() {
		close(a.stop)
		a.wg.Wait()
		// Stop answering first, so no answer can follow the goodbye.
		a.zone.closed.Store(true)
		var errs []error
		if a.sender != nil {
			if b, err := a.zone.goodbye().Pack(); err != nil {
				errs = append(errs, fmt.Errorf("pack goodbye: %w", err))
			} else if err := sendMulticast(&a.sendMu, a.spc, a.ifaces, b); err != nil {
				errs = append(errs, fmt.Errorf("send goodbye: %w", err))
			}
			_ = a.sender.Close()
		}
		if err := a.server.Shutdown(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			a.closeEr = fmt.Errorf("discovery: close: %w", err)
		}
	})
	return a.closeEr
}
