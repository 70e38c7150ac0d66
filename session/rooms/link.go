package rooms

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/trust"
)

// Links joins this server's embedded NATS to other lanmsg servers' with
// leaf-node connections over TLS (PROTOCOL.md, "Links between sites"). Each
// side proves its server key; the accepting side admits only the keys on
// its link allow list, the linking side checks the accepting side's key
// against its pins. Once a link is up, each side's room streams source the
// other side's (see Bus.AddSite), and Links resumes those sources at once
// when a link heals.
type Links struct {
	cfg    LinkConfig
	log    zerolog.Logger
	listen string // the accepting address once known

	mu       sync.Mutex
	accepted map[string]trust.Fingerprint // remote address -> key proved, for inbound links
	remotes  map[string]*remoteState      // --link address -> what its handshakes proved
	peers    map[string]*LinkState        // site -> its link
	refused  throttle
	updMu    sync.Mutex // held while a source is resumed

	ns      *server.Server
	started bool // Start ran: the watcher goroutines exist
	hooks   LinkHooks
	nc      *nats.Conn
	js      jetstream.JetStream
	sub     *nats.Subscription
	adv     *nats.Subscription
	syncCh  chan string // sites to sync
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// LinkConfig is what Links needs: the addresses, the server's identity and
// the checks of the other side's key.
type LinkConfig struct {
	// Listen is --link-listen HOST:PORT; "" accepts no links. Port 0
	// picks a free port (ListenAddr says which).
	Listen string
	// Remotes are the --link HOST:PORT addresses this server links to.
	Remotes []string
	// Identity is this server's key; its certificate is shown on links.
	Identity *trust.Identity
	// Allow is the --link-allow list: the keys that may link in. Required
	// with Listen.
	Allow *trust.AllowList
	// CheckRemote judges the key that the server at a --link address
	// proved: nil accepts it (pinning it on first contact is the
	// caller's part), an error refuses the link.
	CheckRemote func(addr string, fp trust.Fingerprint) error
	// ReconnectInterval is how often a link that is down is tried again;
	// 0 means DefaultLinkReconnect.
	ReconnectInterval time.Duration
	// Log gets links up and down at info, refusals at warn.
	Log *zerolog.Logger
}

// Timings of a link (PROTOCOL.md, "Links between sites").
const (
	linkTLSTimeout  = 5 * time.Second // the TLS handshake
	linkPing        = 2 * time.Second // a ping each way this often
	linkMaxPingsOut = 3               // unanswered pings before the link is dropped
)

// DefaultLinkReconnect is how often a link that is down is tried again.
const DefaultLinkReconnect = time.Second

// linkPoll is how often Links looks at the leaf-node connections to see
// links come and go. nats-server has no callback for them.
const linkPoll = 200 * time.Millisecond

// LinkHooks is what Links needs from the rooms on this server.
type LinkHooks struct {
	// AddSite makes every room stream, existing and new, source the
	// stream of the same room at site. It is called again for a site
	// already added, and must then do nothing.
	AddSite func(site string) error
	// Rooms lists the rooms this server has a stream for.
	Rooms func() ([]string, error)
	// EnsureRoom makes the stream of room exist on this server (with the
	// sources of AddSite), so that a room started on a linked site has its
	// history here too.
	EnsureRoom func(room string) error
	// Online announces again the keys with a session here, so that direct
	// messages held on a site that was cut off are delivered. May be nil.
	Online func()
}

// LinkState is one link, for /debug/state and the tests.
type LinkState struct {
	Dir   string    `json:"dir"`            // "out" (--link) or "in" (--link-listen)
	Addr  string    `json:"addr"`           // the --link address, or the address the link came from
	Key   string    `json:"key,omitempty"`  // the other server's key, once proved
	Site  string    `json:"site,omitempty"` // the other server's site id
	Up    bool      `json:"up"`
	Since time.Time `json:"since"` // when it last went up or down
	Error string    `json:"error,omitempty"`
}

type remoteState struct {
	fp      trust.Fingerprint
	state   *LinkState
	refused throttle
}

// Site is the site id of the server with key fp: the first 8 bytes of
// its fingerprint in hex, as in `lanmsg id`. It is the server's JetStream
// domain and the last token of the subjects its own room messages use.
func Site(fp trust.Fingerprint) string { return fp.ServerID() }

// ServerName is the embedded NATS server's name on site: links check
// that it matches the key the other side proved.
func ServerName(site string) string { return "lanmsg-" + site }

// Errors of link configuration, for errors.Is.
var (
	ErrLinkNoAllow = errors.New("--link-listen needs --link-allow FILE: the keys of the servers that may link in")
	ErrLinkAddr    = errors.New("not HOST:PORT")
)

// NewLinks checks cfg and makes the links; they start with the server
// that ConfigureServer configures.
func NewLinks(cfg LinkConfig) (*Links, error) {
	if cfg.Identity == nil {
		return nil, errors.New("rooms: links need the server's identity")
	}
	if cfg.Listen != "" {
		if err := checkLinkAddr(cfg.Listen, true); err != nil {
			return nil, fmt.Errorf("--link-listen %q: %w", cfg.Listen, err)
		}
		if cfg.Allow == nil {
			return nil, ErrLinkNoAllow
		}
	}
	for _, r := range cfg.Remotes {
		if err := checkLinkAddr(r, false); err != nil {
			return nil, fmt.Errorf("--link %q: %w", r, err)
		}
	}
	if cfg.CheckRemote == nil {
		return nil, errors.New("rooms: links need a check of the linked servers' keys")
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = DefaultLinkReconnect
	}
	l := &Links{cfg: cfg, log: zerolog.Nop(), accepted: map[string]trust.Fingerprint{},
		remotes: map[string]*remoteState{}, peers: map[string]*LinkState{},
		syncCh: make(chan string, 16), stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Log != nil {
		l.log = *cfg.Log
	}
	now := time.Now()
	for _, r := range cfg.Remotes {
		l.remotes[r] = &remoteState{state: &LinkState{Dir: "out", Addr: r, Since: now}}
	}
	return l, nil
}

func checkLinkAddr(a string, listen bool) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return ErrLinkAddr
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (!listen && (n == 0 || host == "")) {
		return fmt.Errorf("%w: bad port or host", ErrLinkAddr)
	}
	return nil
}

// Enabled reports whether any link is configured.
func (l *Links) Enabled() bool { return l != nil && (l.cfg.Listen != "" || len(l.cfg.Remotes) > 0) }

// ConfigureServer sets the leaf-node options of the embedded server: the
// accepting listener and the remotes, both over TLS 1.3 with TLS first
// (nothing is sent in clear), and the server's name from its site.
func (l *Links) ConfigureServer(o *server.Options) error {
	if !l.Enabled() {
		return nil
	}
	cert, err := l.cfg.Identity.Certificate()
	if err != nil {
		return err
	}
	site := Site(l.cfg.Identity.Fingerprint)
	if o.ServerName == "" {
		o.ServerName = ServerName(site)
	}
	if o.JetStreamDomain == "" {
		o.JetStreamDomain = site
	}
	o.LeafNode.ReconnectInterval = l.cfg.ReconnectInterval
	o.LeafNode.TLSHandshakeFirst = true
	o.LeafNode.TLSTimeout = linkTLSTimeout.Seconds()
	// A link whose network is gone is found out by its pings: after
	// about linkPing * (linkMaxPingsOut+1), instead of nats-server's
	// minutes.
	o.LeafNode.PingInterval = linkPing
	o.LeafNode.MaxPingsOut = linkMaxPingsOut
	if l.cfg.Listen != "" {
		host, port, _ := net.SplitHostPort(l.cfg.Listen)
		n, _ := strconv.Atoi(port)
		if n == 0 {
			n = -1 // nats-server's "pick a free port"
		}
		o.LeafNode.Host, o.LeafNode.Port = host, n
		// Only the configured addresses are used: a linked server is
		// never told of other addresses to reach this one by.
		o.LeafNode.NoAdvertise = true
		o.LeafNode.TLSConfig = l.acceptTLS(cert)
	}
	for _, r := range l.cfg.Remotes {
		u := &url.URL{Scheme: "nats-leaf", Host: r}
		o.LeafNode.Remotes = append(o.LeafNode.Remotes, &server.RemoteLeafOpts{
			URLs:              []*url.URL{u},
			TLS:               true,
			TLSConfig:         l.remoteTLS(r, cert),
			TLSHandshakeFirst: true,
			TLSTimeout:        linkTLSTimeout.Seconds(),
		})
	}
	return nil
}

// acceptTLS is the accepting side's TLS: each handshake's configuration
// knows the address it came from, so that the key it proves can be tied to
// the leaf-node connection it becomes.
func (l *Links) acceptTLS(cert tls.Certificate) *tls.Config {
	base := trust.ServerConfig(cert, nil)
	base.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		addr := hi.Conn.RemoteAddr().String()
		return trust.ServerConfig(cert, func(fp trust.Fingerprint, ok bool) error {
			if err := l.cfg.Allow.VerifyClient(fp, ok); err != nil {
				key := "none"
				if ok {
					key = fp.String()
				}
				if n, ok := l.refused.allow(); ok {
					l.log.Warn().Str("from", addr).Str("link_key", key).Int("refused_since_last_log", n).
						Msg("link refused: its key is not in the --link-allow file (to let it in, add the line 'lanmsg id' prints on that server)")
				}
				return err
			}
			l.mu.Lock()
			if len(l.accepted) > maxPendingAccepts {
				clear(l.accepted)
			}
			l.accepted[addr] = fp
			l.mu.Unlock()
			return nil
		}), nil
	}
	return base
}

// maxPendingAccepts bounds the keys remembered for inbound handshakes not
// yet matched to a leaf-node connection.
const maxPendingAccepts = 1024

// remoteTLS is the linking side's TLS for --link addr: it presents this
// server's key and has CheckRemote judge the other's.
func (l *Links) remoteTLS(addr string, cert tls.Certificate) *tls.Config {
	return trust.ClientConfig(&cert, func(fp trust.Fingerprint) error {
		err := l.cfg.CheckRemote(addr, fp)
		l.mu.Lock()
		rs := l.remotes[addr]
		if err == nil {
			rs.fp = fp
			rs.state.Key, rs.state.Site, rs.state.Error = fp.String(), Site(fp), ""
		} else {
			rs.state.Error = err.Error()
		}
		l.mu.Unlock()
		if err != nil {
			if n, ok := rs.refused.allow(); ok {
				l.log.Warn().Err(err).Str("addr", addr).Str("link_key", fp.String()).Int("refused_since_last_log", n).Msg("link refused: the server at this address did not prove the key pinned for it")
			}
		}
		return err
	})
}

// Start watches the links of ns, the server ConfigureServer configured,
// through nc, a connection to it: it logs links going up and down and,
// when one comes up, adds the other site to the rooms, tells it which
// rooms this server has, and resumes the room streams' sources from it.
func (l *Links) Start(ns *server.Server, nc *nats.Conn, h LinkHooks) error {
	if l == nil {
		return nil
	}
	if !l.Enabled() {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	l.ns, l.nc, l.js, l.hooks = ns, nc, js, h
	site := Site(l.cfg.Identity.Fingerprint)
	l.sub, err = nc.Subscribe(linkSubject(site), l.onRooms)
	if err != nil {
		return err
	}
	// A room made here while linked is offered to the linked sites at
	// once, so that their history of it is whole too.
	l.adv, err = nc.Subscribe(streamCreated+"*", func(m *nats.Msg) {
		var a server.JSStreamActionAdvisory
		// Advisories of linked sites cross the link too: only this
		// site's own count.
		if json.Unmarshal(m.Data, &a) != nil || a.Domain != site || !strings.HasPrefix(a.Stream, roomStreamPrefix) {
			return
		}
		room := strings.TrimPrefix(a.Stream, roomStreamPrefix)
		for _, s := range l.upSites() {
			go l.offer(s, []string{room})
		}
	})
	if err != nil {
		return err
	}
	if l.cfg.Listen != "" {
		if v, err := ns.Varz(nil); err == nil {
			host, _, _ := net.SplitHostPort(l.cfg.Listen)
			l.listen = net.JoinHostPort(host, strconv.Itoa(v.LeafNode.Port))
		}
		l.log.Info().Str("link_addr", l.listen).Int("allowed_keys", l.cfg.Allow.Len()).Msg("accepting links from the servers in the --link-allow file")
	}
	l.started = true
	go l.watch()
	go l.syncer()
	return nil
}

// ListenAddr is the address links are accepted on, once started.
func (l *Links) ListenAddr() string {
	if l == nil {
		return ""
	}
	return l.listen
}

// streamCreated is the subject of JetStream's advisory that a stream was
// made, without the stream's name.
const streamCreated = "$JS.EVENT.ADVISORY.STREAM.CREATED."

// roomStreamPrefix is the start of a room stream's name, ROOM_<room>.
const roomStreamPrefix = "ROOM_"

// linkSubject is where the links layer of site hears of rooms.
func linkSubject(site string) string { return "lanmsg.link." + site + ".rooms" }

// roomsOffer tells a linked site which rooms the sender has.
type roomsOffer struct {
	Site  string   `json:"site"`
	Rooms []string `json:"rooms"`
}

// onRooms takes a linked site's rooms: it makes each exist here and
// resumes its source from that site, then answers.
func (l *Links) onRooms(m *nats.Msg) {
	var o roomsOffer
	if err := json.Unmarshal(m.Data, &o); err != nil || o.Site == "" {
		return
	}
	if !l.isPeer(o.Site) {
		return // only a site linked to this one
	}
	if err := l.hooks.AddSite(o.Site); err != nil {
		l.log.Warn().Err(err).Str("site", o.Site).Msg("link: could not source the linked site's rooms")
	}
	for _, r := range o.Rooms {
		if err := l.hooks.EnsureRoom(r); err != nil {
			l.log.Warn().Err(err).Str("room", r).Msg("link: could not keep a linked site's room")
			continue
		}
		l.resume(o.Site, r)
	}
	_ = m.Respond([]byte("{}"))
}

// isPeer reports whether site is linked to this server now.
func (l *Links) isPeer(site string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[site]
	return p != nil && p.Up
}

func (l *Links) upSites() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for site, p := range l.peers {
		if p.Up {
			s = append(s, site)
		}
	}
	return s
}

// offer sends rooms to site until it answers or the link goes down.
func (l *Links) offer(site string, rooms []string) {
	b, _ := json.Marshal(roomsOffer{Site: Site(l.cfg.Identity.Fingerprint), Rooms: rooms})
	for l.isPeer(site) {
		if _, err := l.nc.Request(linkSubject(site), b, 2*time.Second); err == nil {
			return
		}
		select {
		case <-l.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// syncer runs, for each site whose link came up, the steps that bring its
// rooms and this server's together again.
func (l *Links) syncer() {
	for {
		select {
		case <-l.stop:
			return
		case site := <-l.syncCh:
			l.sync(site)
		}
	}
}

// sync brings site and this server together after its link came up: the
// rooms here source it, it learns the rooms here, and every room stream's
// source from it is resumed at once from where it stopped (nats-server
// would otherwise retry it only after a back-off of up to two minutes).
func (l *Links) sync(site string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.hooks.AddSite(site); err != nil {
		l.log.Warn().Err(err).Str("site", site).Msg("link: could not source the linked site's rooms")
	}
	// The other side's JetStream must answer through the link before
	// its sources can be resumed.
	pjs, err := jetstream.NewWithDomain(l.nc, site)
	if err != nil {
		return
	}
	for {
		if _, err := pjs.AccountInfo(ctx); err == nil {
			break
		}
		if !l.isPeer(site) || ctx.Err() != nil {
			return
		}
		select {
		case <-l.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	rooms, err := l.hooks.Rooms()
	if err != nil {
		l.log.Warn().Err(err).Msg("link: could not list the rooms")
	}
	l.offer(site, rooms)
	for _, r := range rooms {
		l.resume(site, r)
	}
	if l.hooks.Online != nil {
		l.hooks.Online()
	}
	l.log.Info().Str("site", site).Int("rooms", len(rooms)).Msg("link: rooms in step with the linked site")
}

// resume restarts the source of room's stream from site, if it has one:
// it is taken out of the stream's configuration and put back, and
// nats-server starts it again after the last message the stream holds from
// it, so nothing is lost or repeated.
func (l *Links) resume(site, room string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.updMu.Lock() // one stream update at a time from the links
	defer l.updMu.Unlock()
	s, err := l.js.Stream(ctx, roomStreamPrefix+room)
	if err != nil {
		return
	}
	cfg := s.CachedInfo().Config
	prefix := "$JS." + site + ".API"
	var kept []*jetstream.StreamSource
	var src *jetstream.StreamSource
	for _, ss := range cfg.Sources {
		if ss.External != nil && ss.External.APIPrefix == prefix {
			src = ss
			continue
		}
		kept = append(kept, ss)
	}
	if src == nil {
		return
	}
	without := cfg
	without.Sources = kept
	if _, err := l.js.UpdateStream(ctx, without); err != nil {
		l.log.Warn().Err(err).Str("room", room).Msg("link: could not resume a room's source")
		return
	}
	// Put back, whatever it takes: a stream left without its source would
	// not hear from site again until the next link-up.
	for try := 0; ; try++ {
		_, err := l.js.UpdateStream(ctx, cfg)
		if err == nil {
			return
		}
		if try == 2 || ctx.Err() != nil {
			l.log.Error().Err(err).Str("room", room).Str("site", site).Msg("link: a room's source from the linked site could not be put back; it resumes at the next link-up")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watch follows the leaf-node connections and logs links going up and
// down.
func (l *Links) watch() {
	defer close(l.done)
	t := time.NewTicker(linkPoll)
	defer t.Stop()
	for {
		l.poll()
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
	}
}

// poll compares the leaf-node connections with the links known.
func (l *Links) poll() {
	lz, err := l.ns.Leafz(nil)
	if err != nil {
		return
	}
	now := time.Now()
	seen := map[string]bool{}
	var kick []uint64
	var up []string
	l.mu.Lock()
	for _, li := range lz.Leafs {
		addr := net.JoinHostPort(li.IP, strconv.Itoa(li.Port))
		site := strings.TrimPrefix(li.Name, "lanmsg-")
		var (
			fp    trust.Fingerprint
			dir   = "in"
			found bool
		)
		if k, ok := l.accepted[addr]; ok {
			fp, found = k, true
		} else {
			for ra, rs := range l.remotes {
				if !rs.fp.IsZero() && Site(rs.fp) == site {
					fp, found, dir, addr = rs.fp, true, "out", ra
					break
				}
			}
		}
		if !found {
			continue // its handshake is not matched yet
		}
		if Site(fp) != site {
			// The server's name does not match the key it proved.
			kick = append(kick, li.ID)
			continue
		}
		seen[site] = true
		p := l.peers[site]
		if p == nil {
			p = &LinkState{Site: site}
			l.peers[site] = p
		}
		p.Dir, p.Addr, p.Key = dir, addr, fp.String()
		if dir == "out" {
			l.remotes[addr].state.Up = true
		}
		if !p.Up {
			p.Up, p.Since = true, now
			if rs := l.remotes[addr]; dir == "out" {
				rs.state.Since = now
			}
			up = append(up, site)
			l.log.Info().Str("dir", dir).Str("addr", addr).Str("site", site).Str("link_key", fp.String()).Msg("link up")
		}
	}
	for site, p := range l.peers {
		if p.Up && !seen[site] {
			p.Up, p.Since = false, now
			if rs := l.remotes[p.Addr]; rs != nil && p.Dir == "out" {
				rs.state.Up, rs.state.Since = false, now
			}
			if p.Dir == "in" {
				delete(l.accepted, p.Addr)
			}
			l.log.Info().Str("dir", p.Dir).Str("addr", p.Addr).Str("site", site).Msg("link down")
		}
	}
	l.mu.Unlock()
	for _, id := range kick {
		l.log.Warn().Uint64("leaf", id).Msg("link dropped: the other server's name does not match the key it proved")
		_ = l.ns.DisconnectClientByID(id)
	}
	for _, s := range up {
		select {
		case l.syncCh <- s:
		default:
			go func() { l.syncCh <- s }()
		}
	}
}

// State lists the links: each --link address, and each site linked in.
func (l *Links) State() []LinkState {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LinkState
	for _, rs := range l.remotes {
		out = append(out, *rs.state)
	}
	for _, p := range l.peers {
		if p.Dir == "in" {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir > out[j].Dir
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// Close stops watching the links; the server's shutdown closes them.
func (l *Links) Close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		close(l.stop)
		if l.sub != nil {
			_ = l.sub.Unsubscribe()
		}
		if l.adv != nil {
			_ = l.adv.Unsubscribe()
		}
	})
	if l.started {
		<-l.done
	}
}

// throttle lets a repeated log line through at most once a second.
type throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (t *throttle) allow() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.last) < time.Second {
		t.suppressed++
		return 0, false
	}
	n := t.suppressed
	t.last, t.suppressed = time.Now(), 0
	return n, true
}
