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

	"github.com/rs/zerolog"
)

// pollInterfaces is how often the interfaces and their addresses are re-read, so that a
// machine that changes network is probed and announced on without a restart.
const pollInterfaces = time.Second

// AdvertiseConfig configures Advertise.
type AdvertiseConfig struct {
	Instance string            // wanted instance name; default Hostname
	Hostname string            // default os.Hostname() (first label); host record is <Hostname>.local.
	Port     int               // required
	Addrs    []netip.Addr      // override (--advertise-addr), the same on every interface; if empty: each interface's own
	TXT      map[string]string // caller's extra TXT keys; "v" is set by Advertise, and "id" unless the caller gives one
	// Also lists other service types to advertise under the same instance name, host and port
	// (the chat page's _http._tcp). They are probed and renamed together with the instance.
	Also []AlsoService
	// Interfaces restricts mDNS to these interfaces (by name); empty: every interface that is
	// up and multicast-capable, followed as they come and go.
	Interfaces []string
	Log        *zerolog.Logger // required: renames and reclaims at warn, interface changes at info, packets at debug
}

// AlsoService is another service type advertised beside ServiceType (AdvertiseConfig.Also).
type AlsoService struct {
	Type string            // e.g. HTTPServiceType
	TXT  map[string]string // its TXT keys, as given
}

// Advertiser is a running advertisement. Close withdraws it.
type Advertiser struct {
	log  *zerolog.Logger
	conn pconn
	mu   sync.Mutex // guards e
	e    *engine
	live chan struct{} // closed once probing has succeeded on every interface
	wake chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Advertise probes for name conflicts on every interface in use, then answers queries and
// announces. It returns once the service is being answered on every interface, or at once
// when no interface is usable yet (it then starts when one comes up); the rest (announcements, new
// interfaces, renames and reclaims) goes on in the background.
func Advertise(ctx context.Context, cfg AdvertiseConfig) (*Advertiser, error) {
	if cfg.Log == nil {
		return nil, errors.New("discovery: advertise: Log is required")
	}
	ecfg, err := engineConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := openSysConn(cfg.Interfaces, false, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("discovery: advertise: %w", err)
	}
	ifs := conn.interfaces()
	if err := usableIfaces(ifs, cfg.Interfaces); err != nil {
		// A laptop started offline: advertise once an interface comes up.
		cfg.Log.Warn().Err(err).Msg("discovery: no usable network interface yet; advertising as soon as one comes up")
	}
	if len(ecfg.addrs) == 0 {
		ev := cfg.Log.Info()
		for _, ifc := range ifs {
			if as := linkAddrs(ifc, nil); len(as) > 0 {
				ev = ev.Strs(ifc.name, addrStrings(as))
			}
		}
		ev.Str("reason", addressReason(ctx, cfg.Hostname)).Msg("choosing the addresses to advertise")
	}
	return advertiseOn(ctx, conn, ecfg, time.Now)
}

// addressReason explains, for the log, that each interface advertises its own addresses, and
// why the one the hostname resolves to is not used when it is loopback (Debian maps the
// hostname to 127.0.1.1, containers to 127.0.0.1).
func addressReason(ctx context.Context, hostname string) string {
	why := "each interface answers with its own addresses"
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resolved, _ := net.DefaultResolver.LookupNetIP(lctx, "ip", hostname)
	for _, a := range resolved {
		if a.Unmap().IsLoopback() {
			return why + fmt.Sprintf("; hostname %q resolves to loopback %s, which other machines cannot reach", hostname, a.Unmap())
		}
	}
	return why
}

// engineConfigFor validates cfg and fills in the defaults.
func engineConfigFor(cfg AdvertiseConfig) (engineConfig, error) {
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return engineConfig{}, fmt.Errorf("discovery: advertise: invalid port %d", cfg.Port)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return engineConfig{}, fmt.Errorf("discovery: advertise: hostname: %w", err)
		}
		hostname = h
	}
	hostLabel, _, _ := strings.Cut(strings.TrimSuffix(hostname, "."), ".")
	if hostLabel == "" {
		return engineConfig{}, fmt.Errorf("discovery: advertise: invalid hostname %q", hostname)
	}
	hostLabel = truncateLabel(hostLabel, maxLabel)
	instance := cfg.Instance
	if instance == "" {
		instance = hostLabel
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return engineConfig{}, fmt.Errorf("discovery: advertise: server id: %w", err)
	}
	txt := map[string]string{}
	for k, v := range cfg.TXT {
		txt[strings.ToLower(k)] = v
	}
	txt["v"] = protoVer
	if txt["id"] == "" {
		txt["id"] = hex.EncodeToString(idb[:])
	}
	var also []alsoService
	for _, a := range cfg.Also {
		if !validServiceType(a.Type) || a.Type == ServiceType {
			return engineConfig{}, fmt.Errorf("discovery: advertise: invalid service type %q", a.Type)
		}
		also = append(also, alsoService{fqdn: a.Type + "." + domain, txt: formatTXT(a.TXT)})
	}
	return engineConfig{instance: truncateLabel(instance, maxLabel), host: hostLabel, port: uint16(cfg.Port),
		txt: formatTXT(txt), addrs: sortAddrs(cfg.Addrs), also: also, log: cfg.Log}, nil
}

// advertiseOn runs the responder on conn until Close.
func advertiseOn(ctx context.Context, conn pconn, ecfg engineConfig, now func() time.Time) (*Advertiser, error) {
	a := &Advertiser{log: ecfg.log, conn: conn, e: newEngine(ecfg), live: make(chan struct{}), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	a.e.setInterfaces(now(), conn.interfaces())
	a.wg.Add(2)
	go a.receive(now)
	go a.run(now)
	if len(a.e.links) == 0 {
		// Nothing to probe on yet: the interfaces are polled, and probing starts on the
		// first usable one.
		return a, nil
	}
	select {
	case <-a.live:
		return a, nil
	case <-ctx.Done():
		a.shutdown(false)
		return nil, fmt.Errorf("discovery: probe: %w", ctx.Err())
	}
}

// receive hands packets to the engine.
func (a *Advertiser) receive(now func() time.Time) {
	defer a.wg.Done()
	for {
		p, err := a.conn.read()
		if err != nil {
			return
		}
		a.mu.Lock()
		a.e.handle(now(), p)
		a.flush()
		a.mu.Unlock()
		a.kick()
	}
}

// kick wakes run, whose next wake-up may have moved earlier.
func (a *Advertiser) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run ticks the engine when it is due and polls the interfaces.
func (a *Advertiser) run(now func() time.Time) {
	defer a.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := time.NewTicker(pollInterfaces)
	defer poll.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-timer.C:
		case <-a.wake:
		case <-poll.C:
			ifs := a.conn.interfaces()
			a.mu.Lock()
			a.e.setInterfaces(now(), ifs)
			a.mu.Unlock()
		}
		a.mu.Lock()
		t := now()
		a.e.tick(t)
		a.flush()
		if a.e.settled() {
			select {
			case <-a.live:
			default:
				close(a.live)
			}
		}
		next := a.e.next()
		a.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(t), 0)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// flush sends what the engine has to send. Called with a.mu held.
func (a *Advertiser) flush() {
	for _, o := range a.e.take() {
		b, err := o.msg.Pack()
		if err != nil {
			a.log.Debug().Err(err).Msg("discovery: pack")
			continue
		}
		if err := a.conn.write(b, o.ifIndex, o.dst); err != nil && !errors.Is(err, net.ErrClosed) {
			a.log.Debug().Err(err).Int("ifindex", o.ifIndex).Str("to", o.dst.String()).Msg("discovery: send")
		}
	}
}

// Service returns what is advertised now: instance and host names (which change on a rename
// or a reclaim), addresses on every interface, TXT with id.
func (a *Advertiser) Service() Service {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.e.service()
}

// Close stops answering, sends goodbyes (TTL 0) on every interface it was announced on, and
// releases the sockets. It is safe to call more than once.
func (a *Advertiser) Close() error {
	a.shutdown(true)
	return nil
}

func (a *Advertiser) shutdown(goodbye bool) {
	a.once.Do(func() {
		close(a.stop)
		a.mu.Lock()
		if goodbye {
			a.e.close()
			a.flush()
		}
		a.e.closed = true
		a.mu.Unlock()
		_ = a.conn.close()
		a.wg.Wait()
	})
}

// validServiceType accepts "_name._tcp" or "_name._udp" (RFC 6763 section 7).
func validServiceType(t string) bool {
	name, proto, ok := strings.Cut(t, ".")
	return ok && (proto == "_tcp" || proto == "_udp") && len(name) > 1 && len(name) <= 16 && name[0] == '_' &&
		!strings.ContainsAny(name[1:], "._ \\")
}
