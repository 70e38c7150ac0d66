package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/web"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

// defaultPort is the tutorial's port.
const defaultPort = 5050

// shutdownGrace bounds a graceful shutdown, well inside the 2 s promised.
const shutdownGrace = 1500 * time.Millisecond

type serveCmd struct {
	Listen        string   `placeholder:"HOST:PORT" help:"Address to listen on. Default: all interfaces, port 5050; if 5050 is taken, a free port (and the log says which)."`
	Name          string   `placeholder:"NAME" help:"Name to advertise on the LAN. Default: this machine's hostname."`
	NoAdvertise   bool     `help:"Do not advertise over mDNS; clients then need --server HOST:PORT."`
	AdvertiseAddr []string `placeholder:"IP" help:"Advertise this IP address, on every interface, instead of each interface's own addresses. Repeat for several."`
	mdnsFlags
	Format string `enum:"text,json" default:"text" placeholder:"FORMAT" help:"How received messages are printed on stdout: text ('[PEER] : MESSAGE') or json (JSON Lines)."`

	MaxPayload    byteSize      `default:"1MiB" placeholder:"SIZE" help:"Largest message accepted (e.g. 64KiB, 1MiB). A larger one ends its session. Default ${default}."`
	MaxSessions   int           `default:"1024" placeholder:"N" help:"Most sessions open at once; more are refused. Default ${default}."`
	IdleTimeout   time.Duration `default:"5m" placeholder:"DURATION" help:"Close a session silent this long between messages. Default ${default}."`
	HeaderTimeout time.Duration `default:"10s" placeholder:"DURATION" help:"Close a session that takes longer than this to send a 64-byte header once started. Default ${default}."`
	ReadTimeout   time.Duration `default:"30s" placeholder:"DURATION" help:"Close a session that stalls this long inside a message. Default ${default}."`
	SendQueue     byteSize      `default:"1MiB" placeholder:"SIZE" help:"Chat events that may wait for a participant who does not read them; past this, it is disconnected so the room never waits. Default ${default}."`
	SendTimeout   time.Duration `default:"10s" placeholder:"DURATION" help:"Disconnect a chat participant whose connection takes no bytes for this long. Default ${default}."`

	MaxSessionsPerHost int           `default:"64" placeholder:"N" help:"Most sessions one IP address may hold at once; more from it are refused, so that one machine cannot take every slot. Default ${default}."`
	MemoryBudget       byteSize      `default:"128MiB" placeholder:"SIZE" help:"Memory the server may hold for all peers together (messages being read, output waiting, chat events queued); past it, the peers holding the most are disconnected. Default ${default}."`
	MinRate            byteSize      `default:"1KiB" placeholder:"SIZE" help:"Bytes per second a message under way must bring, measured over --min-rate-window; a slower sender is disconnected, so a trickle cannot hold a slot. Default ${default}."`
	MinRateWindow      time.Duration `default:"10s" placeholder:"DURATION" help:"The window over which --min-rate is measured (1s to 1m). Default ${default}."`
	PingInterval       time.Duration `default:"30s" placeholder:"DURATION" help:"How often chat participants are pinged; lanmsg chat answers by itself, and a participant silent for two intervals is disconnected. Default ${default}."`

	TLSOnly bool   `name:"tls-only" help:"Refuse plain (unencrypted) sessions, such as the tutorial's client's: only TLS sessions are served. Refusals are logged at most once a second."`
	Allow   string `type:"path" placeholder:"FILE" help:"Let only the client keys listed in FILE (one fingerprint a line, as 'lanmsg id' prints it) connect over TLS. With --tls-only, nobody else at all."`

	roomFlags
	linkFlags

	NoWeb bool `name:"no-web" help:"Do not serve the chat page (HTTP on the same port, for browsers), nor advertise it."`

	ReadyFile   string `type:"path" placeholder:"PATH" help:"Once every listener is up (and the advertisement, if any, is on), write a small JSON object to PATH (atomically: it appears whole) with the address, port, key fingerprint and advertised name, for scripts and tests that wait for the server. Removed when the server stops."`
	DebugListen string `placeholder:"HOST:PORT" help:"Serve Go profiles (/debug/pprof/) and a JSON snapshot of the server (/debug/state) on this address, for diagnosis. Keep it on loopback (127.0.0.1:6060)."`
}

func (c *serveCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	cfg := session.Config{
		MaxPayload:    int(c.MaxPayload),
		MaxSessions:   c.MaxSessions,
		IdleTimeout:   c.IdleTimeout,
		HeaderTimeout: c.HeaderTimeout,
		ReadTimeout:   c.ReadTimeout,
		SendQueue:     int(c.SendQueue),
		SendTimeout:   c.SendTimeout,

		MaxSessionsPerHost: c.MaxSessionsPerHost,
		MemoryBudget:       int64(c.MemoryBudget),
		MinRate:            int(c.MinRate),
		MinRateWindow:      c.MinRateWindow,
		PingInterval:       c.PingInterval,
	}
	if err := checkName(c.Name); err != nil {
		return err
	}
	if c.MaxSessions < 1 {
		return &cliError{code: exitUsage, err: fmt.Errorf("--max-sessions must be at least 1, got %d", c.MaxSessions)}
	}
	if c.MaxSessionsPerHost < 1 {
		return &cliError{code: exitUsage, err: fmt.Errorf("--max-sessions-per-host must be at least 1, got %d", c.MaxSessionsPerHost)}
	}
	if err := checkTimeouts(map[string]time.Duration{"--idle-timeout": c.IdleTimeout, "--header-timeout": c.HeaderTimeout, "--read-timeout": c.ReadTimeout,
		"--send-timeout": c.SendTimeout, "--min-rate-window": c.MinRateWindow, "--ping-interval": c.PingInterval}); err != nil {
		return err
	}
	if c.MinRateWindow > session.MaxMinRateWindow {
		return &cliError{code: exitUsage, err: fmt.Errorf("--min-rate-window %v is longer than %v", c.MinRateWindow, session.MaxMinRateWindow),
			hint: "a trickling client holds a slot for up to one window; use 10s to 1m"}
	}
	if err := cfg.Validate(); err != nil {
		ce := &cliError{code: exitUsage, err: err}
		if strings.Contains(err.Error(), "memory budget") {
			ce.hint = "raise --memory-budget, or lower --max-payload"
		}
		return ce
	}
	if err := c.checkName(); err != nil {
		return err
	}
	st, err := c.setupTLS(dir, &cfg, log)
	if err != nil {
		return err
	}
	links, err := c.setupLinks(st.id, c.NATS, log)
	if err != nil {
		return err
	}
	c.configureServer = links.ConfigureServer
	bus, err := c.startBus(dir, st.id.Fingerprint.ServerID(), int(c.MaxPayload), &cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = bus.Close() }()
	defer links.Close() // before the bus's server goes
	limitMemory(cfg.MemoryBudget, log)
	advAddrs, err := parseAddrs(c.AdvertiseAddr)
	if err != nil {
		return err
	}
	ifi, err := c.iface()
	if err != nil {
		return err
	}
	format, err := session.ParseFormat(c.Format)
	if err != nil {
		return &cliError{code: exitUsage, err: err}
	}
	var page *web.Server
	if !c.NoWeb && !c.TLSOnly {
		if page, err = web.New(log, web.Options{Room: defaultRoom}); err != nil {
			return err
		}
		cfg.Web = page
		defer func() { _ = page.Close() }()
	} else if !c.NoWeb {
		log.Info().Msg("no chat page: --tls-only refuses plain HTTP as it does plain sessions")
	}
	srv, err := session.NewServer(cfg, std.out, format, log)
	if err != nil {
		return &cliError{code: exitUsage, err: err}
	}
	if page != nil {
		page.Start(srv)
	}

	ln, err := c.listen(log)
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	var debugAddr string
	if c.DebugListen != "" {
		if err := checkHostPort(c.DebugListen, "--debug-listen"); err != nil {
			_ = ln.Close()
			return err
		}
		dln, err := net.Listen("tcp", c.DebugListen)
		if err != nil {
			_ = ln.Close()
			return listenError(c.DebugListen, err)
		}
		debugAddr = dln.Addr().String()
		hs := serveDebug(dln, srv, bus, log, links)
		defer func() { _ = hs.Close() }()
		log.Info().Str(session.FieldDebugAddr, dln.Addr().String()).Msg("debug endpoints: /debug/pprof/, /debug/state")
	}
	log.Info().Str(session.FieldAddr, addr.String()).Str("format", c.Format).Msg("lanmsg serving; stop with Ctrl-C")
	ready := readyInfo{Addr: addr.String(), Port: addr.Port, DebugAddr: debugAddr, Fingerprint: st.id.Fingerprint.String()}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	// Clients that know the address are served already (a chat waits for
	// the bus); the LAN and the ready file learn of the server once the
	// bus is up and the default room open.
	var failed error // why serve stops on its own
	select {
	case <-bus.Ready():
		if err := bus.Err(); err != nil {
			failed = &cliError{code: exitFailure, err: err, hint: busHint(c.NATS)}
		} else {
			if err := srv.OpenRoom(rooms.DefaultRoom); err != nil {
				log.Error().Err(err).Msg("cannot open the default room")
			}
			if err := bus.StartLinks(ctx, links); err != nil {
				log.Error().Err(err).Msg("links to other sites could not start; rooms are this site's only")
			}
			ready.LinkAddr = links.ListenAddr()
		}
	case <-ctx.Done():
	}

	var adv advertisement
	if !c.NoAdvertise && failed == nil {
		adv = c.advertise(ctx, l, log, addr, advAddrs, ifi, st, page != nil)
	}
	if page != nil && failed == nil {
		c.showPage(std, log, addr, adv)
	}
	if adv != nil {
		s := adv.Service()
		ready.Name, ready.Addrs = s.Instance, addrStrings(s.Addrs)
	}
	if c.ReadyFile != "" {
		if err := writeReadyFile(c.ReadyFile, ready); err != nil {
			failed = &cliError{code: exitFailure, err: fmt.Errorf("--ready-file: %w", err),
				hint: "give a path in a directory that exists and that you may write to"}
		} else {
			defer func() { _ = os.Remove(c.ReadyFile) }()
		}
	}

	// Serve until a signal, or until the bus fails to start.
	busReady := bus.Ready()
	for running := failed == nil; running; {
		select {
		case err := <-errc:
			if adv != nil {
				_ = adv.Close()
			}
			return fmt.Errorf("serve: %w", err)
		case <-busReady:
			busReady = nil
			if err := bus.Err(); err != nil {
				failed = &cliError{code: exitFailure, err: err, hint: busHint(c.NATS)}
				running = false
			}
		case <-ctx.Done():
			running = false
		}
	}

	if adv != nil {
		// Say goodbye on the LAN first, so that no client picks a server
		// that is going away.
		if err := adv.Close(); err != nil {
			log.Warn().Err(err).Msg("stopping the mDNS advertisement")
		}
	}
	log.Info().Int("sessions", len(srv.Sessions())).Msg("shutting down: no new sessions, ending open ones")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("shutdown did not finish cleanly")
	}
	<-errc
	log.Info().Msg("stopped")
	return failed
}

// readyInfo is what --ready-file holds.
type readyInfo struct {
	Addr        string   `json:"addr"`                 // the listening address, HOST:PORT
	Port        int      `json:"port"`                 // its port
	DebugAddr   string   `json:"debug_addr,omitempty"` // --debug-listen's address
	LinkAddr    string   `json:"link_addr,omitempty"`  // --link-listen's address
	Fingerprint string   `json:"fingerprint"`          // the server key's, as 'lanmsg id' prints it
	Name        string   `json:"name,omitempty"`       // the instance name advertised on the LAN
	Addrs       []string `json:"addrs,omitempty"`      // the addresses advertised
}

// writeReadyFile writes info to path atomically: into a temporary file in
// the same directory, renamed over path, so that a reader never sees it
// half written.
func writeReadyFile(path string, info readyInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// maxNameBytes is the longest --name: one DNS label.
const maxNameBytes = 63

// checkName refuses a --name that mDNS would have to cut.
func checkName(name string) error {
	if len(name) <= maxNameBytes {
		return nil
	}
	return &cliError{code: exitUsage, err: fmt.Errorf("--name %q is %d bytes long; a name on the LAN has at most %d (one DNS label)", name, len(name), maxNameBytes),
		hint: "choose a shorter name; letters outside ASCII take 2 to 4 bytes each"}
}

// limitMemory tells the Go runtime to collect garbage harder as the process
// nears twice the memory budget (plus room for the runtime itself), so that
// memory freed by shed peers is returned promptly. GOMEMLIMIT, when set,
// wins.
func limitMemory(budget int64, log *zerolog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := 2*budget + 64<<20
	debug.SetMemoryLimit(limit)
	log.Debug().Int64(session.FieldBytes, limit).Msg("Go memory limit set from --memory-budget")
}

// listen opens the listening socket. Without --listen it takes port 5050 on
// all interfaces, or any free port when 5050 is taken.
func (c *serveCmd) listen(log *zerolog.Logger) (net.Listener, error) {
	if c.Listen != "" {
		if err := checkHostPort(c.Listen, "--listen"); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return nil, listenError(c.Listen, err)
		}
		return ln, nil
	}
	want := ":" + strconv.Itoa(defaultPort)
	ln, err := net.Listen("tcp", want)
	if neterr.AddrInUse(err) {
		ln, err = net.Listen("tcp", ":0")
		if err == nil {
			log.Warn().Int("port", ln.Addr().(*net.TCPAddr).Port).
				Msgf("port %d is in use; listening on a free port instead (clients that discover the server find it; others need --server HOST:PORT)", defaultPort)
		}
	}
	if err != nil {
		return nil, listenError(want, err)
	}
	return ln, nil
}

func listenError(addr string, err error) error {
	ce := &cliError{code: exitFailure, err: fmt.Errorf("cannot listen on %s: %w", addr, unwrapOp(err))}
	switch {
	case neterr.AddrInUse(err):
		ce.hint = "another program (perhaps another lanmsg serve) uses that port; pick another with --listen :PORT, or leave out --listen to take a free one"
	case neterr.Denied(err):
		ce.hint = "ports below 1024 need privileges; use a higher port, such as the default 5050"
	case neterr.AddrNotAvailable(err):
		ce.hint = "that IP address is not one of this machine's; leave the host empty (--listen :PORT) to listen on all interfaces"
	}
	return ce
}

// unwrapOp strips the net.OpError and os.SyscallError wrappers, whose text
// repeats the address and names system calls.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) && sc.Err != nil {
		err = sc.Err
	}
	return err
}

// checkHostPort validates a HOST:PORT flag value.
func checkHostPort(addr, flag string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &cliError{code: exitUsage, err: fmt.Errorf("%s %q: %v", flag, addr, addrErr(err)),
			hint: fmt.Sprintf("give HOST:PORT, such as %s 192.168.1.20:5050, %s :5050, or %s [fe80::1%%eth0]:5050", flag, flag, flag)}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &cliError{code: exitUsage, err: fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", flag, addr, port)}
	}
	_ = host
	return nil
}

func addrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func checkTimeouts(ts map[string]time.Duration) error {
	for flag, d := range ts {
		if d <= 0 {
			return &cliError{code: exitUsage, err: fmt.Errorf("%s must be positive, got %v", flag, d),
				hint: fmt.Sprintf("give a duration with its unit, such as %s 1.5s, %s 500ms or %s 2m", flag, flag, flag)}
		}
	}
	return nil
}

// advertise announces the server on the LAN. A failure is logged, not fatal:
// the server still serves clients that know its address.
func (c *serveCmd) advertise(ctx context.Context, l lan, log *zerolog.Logger, bound *net.TCPAddr, addrs []netip.Addr, ifi []string, st *serverTLS, page bool) advertisement {
	if ip, ok := netip.AddrFromSlice(bound.IP); ok && !ip.Unmap().IsUnspecified() {
		ip = ip.Unmap()
		if ip.IsLoopback() {
			log.Warn().Str(session.FieldAddr, bound.String()).Msg("listening on a loopback address only, which other machines cannot reach: not advertising on the LAN")
			return nil
		}
		if len(addrs) == 0 {
			addrs = []netip.Addr{ip} // listening on one address: advertise that one
		}
	}
	txt := map[string]string{"ver": versionString(), helloTXT: "1", idTXT: serverID(st.id.Fingerprint, bound.Port)}
	for k, v := range st.txt {
		txt[k] = v
	}
	var also []discovery.AlsoService
	if page {
		txt[webTXT] = web.Path
		also = append(also, discovery.AlsoService{Type: discovery.HTTPServiceType, TXT: map[string]string{"path": web.Path}})
	}
	adv, err := l.Advertise(ctx, discovery.AdvertiseConfig{
		Instance:   c.Name,
		Port:       bound.Port,
		Addrs:      addrs,
		TXT:        txt,
		Also:       also,
		Interfaces: ifi,
		Log:        log,
	})
	if err != nil {
		if ctx.Err() == nil { // not just a signal during probing
			log.Error().Err(err).Msg("cannot advertise over mDNS; still serving, but clients need --server HOST:PORT (is there a multicast-capable network interface?)")
		}
		return nil
	}
	s := adv.Service()
	log.Info().Str(session.FieldName, s.Instance).Str("host", s.Host).Strs("addrs", addrStrings(s.Addrs)).Int("port", s.Port).
		Msg("advertising on the LAN as " + discovery.ServiceType)
	return adv
}

// parseAddrs parses --advertise-addr values.
func parseAddrs(ss []string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &cliError{code: exitUsage, err: fmt.Errorf("--advertise-addr %q is not an IP address", s), hint: "give an address such as 192.168.1.20"}
		}
		if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() {
			return nil, &cliError{code: exitUsage, err: fmt.Errorf("--advertise-addr %s cannot be reached from other machines", s), hint: "give one of this machine's LAN addresses"}
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

func addrStrings(addrs []netip.Addr) []string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return s
}
