package session

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("session: server closed")

// Server accepts sessions and writes the messages they carry to its output.
type Server struct {
	cfg    Config
	log    *zerolog.Logger
	out    *output
	format Format

	mu       sync.Mutex
	sessions map[uint64]*conn
	lns      map[*net.Listener]struct{} // every listener Serve is using
	done     chan struct{}              // closed when Shutdown has ended every session
	doneOnce sync.Once
	closed   bool
	nextID   uint64
	wg       sync.WaitGroup

	perHost  map[hostKey]int // sessions open per client address
	budget   *budget
	refusals refusalLog
	hostLog  refusalLog
	plainLog refusalLog // plain sessions refused by --tls-only
	busLog   LogThrottle
	rooms    roomSet
}

// hostKey is a client's address, without port or zone: the unit of
// Config.MaxSessionsPerHost.
type hostKey = netip.Addr

func hostOf(a net.Addr) hostKey {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

// NewServer returns a server that writes received messages to out in the
// given format. Writes to out are serialised; each is a batch of whole lines.
// A Write that blocks holds up the sessions writing to it, and through them
// their clients: nothing is dropped and memory stays bounded.
func NewServer(cfg Config, out io.Writer, format Format, log *zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      log,
		out:      newOutput(out, cfg.MemoryBudget/4),
		format:   format,
		sessions: make(map[uint64]*conn),
		lns:      make(map[*net.Listener]struct{}),
		done:     make(chan struct{}),
		perHost:  make(map[hostKey]int),
		budget:   newBudget(cfg.MemoryBudget),
	}
	s.budget.victims = s.accounts
	if cfg.Bus != nil {
		cfg.Bus.OnDelivered(s.delivered)
	}
	return s, nil
}

// accounts yields every session's budget account, under the registry lock.
func (s *Server) accounts(yield func(*account) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		if !yield(&c.acct) {
			return
		}
	}
}

// Budget reports the memory budget: its limit, what peers hold now, and how
// many sessions were shed because it ran out.
func (s *Server) Budget() BudgetStats {
	return BudgetStats{Limit: s.budget.limit, Used: s.budget.used.Load(), Shed: s.budget.shed.Load()}
}

// Hosts reports how many sessions each client address holds.
func (s *Server) Hosts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.perHost))
	for h, n := range s.perHost {
		m[h.String()] = n
	}
	return m
}

// Done is closed when the server has shut down and every session has
// ended (see Shutdown).
func (s *Server) Done() <-chan struct{} { return s.done }

// Config returns the server's limits, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on ln until Shutdown, serving each in its own
// goroutine. It always returns a non-nil error: ErrServerClosed after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[&ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, &ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait, as net/http
				// does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.start(nc)
	}
}

// isTemporary reports errors an accept loop should wait out (EMFILE,
// ENFILE, ECONNABORTED...). net.Error's Temporary is deprecated but still the
// only signal the standard library gives for these.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// start registers and serves a new connection, or refuses it.
func (s *Server) start(nc net.Conn) {
	if c := s.register(nc, false); c != nil {
		go c.serve()
	}
}

// register registers a new connection as a session (a chat page's
// WebSocket if web), or refuses it (and resets it) and returns nil.
func (s *Server) register(nc net.Conn, web bool) *conn {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		reset(nc)
		return nil
	}
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		reset(nc)
		s.refusals.note(s.log, nc.RemoteAddr().String(), s.cfg.MaxSessions, "connection refused: too many sessions (raise --max-sessions)")
		return nil
	}
	host := hostOf(nc.RemoteAddr())
	if s.perHost[host] >= s.cfg.MaxSessionsPerHost {
		s.mu.Unlock()
		reset(nc)
		s.hostLog.note(s.log, nc.RemoteAddr().String(), s.cfg.MaxSessionsPerHost, "connection refused: too many sessions from this address (raise --max-sessions-per-host)")
		return nil
	}
	s.perHost[host]++
	// Until a session ends with !DISCONNECT and its messages are written,
	// any close of this socket must be a reset, never an orderly close that
	// the client would take for its confirmation: also when the process
	// dies, is killed, or exits with the session still blocked on its output.
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	s.nextID++
	c := newConn(s, s.nextID, nc, host)
	c.web = web
	s.sessions[c.id] = c
	active := len(s.sessions)
	s.wg.Add(1)
	s.mu.Unlock()

	s.log.Info().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Int(FieldActive, active).Msg("session opened")
	return c
}

// unregister removes a finishing session from the registry and returns how
// many remain.
func (s *Server) unregister(c *conn) (active int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, c.id)
	if s.perHost[c.host]--; s.perHost[c.host] <= 0 {
		delete(s.perHost, c.host)
	}
	return len(s.sessions)
}

// end logs a finished, unregistered session and releases it.
func (s *Server) end(c *conn, active int, reason string, err error) {
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	ev.Uint64(FieldSession, c.id).Str(FieldPeer, c.peer).Str(FieldReason, reason).
		Int64(FieldMessages, c.messages.Load()).Int64(FieldBytes, c.bytes.Load()).
		Str(FieldDuration, time.Since(c.start).Round(time.Microsecond).String()).Int(FieldActive, active).Msg("session closed")
	s.wg.Done()
}

// Info describes a live session.
type Info struct {
	ID       uint64
	Peer     string
	Start    time.Time
	Messages int64 // messages written to the output so far
	Bytes    int64 // payload bytes of those messages
	TLS      bool  // the session runs over TLS
	Web      bool  // the session is a chat page's WebSocket
	HTTP     bool  // the connection carries HTTP (the chat page)
	// ClientKey is the fingerprint of the client's key, in a TLS session
	// whose client sent a certificate; empty otherwise.
	ClientKey string
}

// Sessions returns the live sessions, oldest first.
func (s *Server) Sessions() []Info {
	s.mu.Lock()
	infos := make([]Info, 0, len(s.sessions))
	for _, c := range s.sessions {
		in := Info{ID: c.id, Peer: c.peer, Start: c.start, Messages: c.messages.Load(), Bytes: c.bytes.Load(), Web: c.web, HTTP: c.http.Load()}
		if st := c.tlsp.Load(); st != nil {
			in.TLS = true
			if fp, ok := st.Client(); ok {
				in.ClientKey = fp.String()
			}
		}
		infos = append(infos, in)
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	return infos
}

// Shutdown closes every listener given to Serve, ends every session at once
// and waits for them, or for ctx. Unlike net/http's Shutdown, it does not
// wait for sessions to finish on their own (a chat participant may stay for
// hours): like net/http's Close, it interrupts them, and each writes the
// messages it has read to the output first. Sessions ended this way are
// reset, so their clients know they were not confirmed. When ctx ends
// first, the sessions still running (stuck on a blocked output) are reset
// and given up on: what they had read is not written, and Shutdown returns
// ctx's error. Done is closed once every session has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	var err error
	for ln := range s.lns {
		if cerr := (*ln).Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	for _, c := range s.sessions {
		c.interrupt()
	}
	s.mu.Unlock()
	for _, r := range s.allRooms() {
		r.stop()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
		s.doneOnce.Do(func() { close(s.done) })
	}()
	select {
	case <-done:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	case <-ctx.Done():
		// Sessions still running are stuck, most likely on the output:
		// reset them now, so that none of their clients is left waiting or,
		// worse, confirmed later by an orderly close at process exit.
		s.mu.Lock()
		for _, c := range s.sessions {
			c.giveUp()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// reset closes nc so that the peer sees a reset, not an orderly close: a
// client waiting for delivery confirmation must not take it for one.
func reset(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// LogThrottle lets a repeated warning through at most once a second and
// counts the ones held back, so that a flood of refusals cannot flood the
// log. The zero value is ready to use.
type LogThrottle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log now and, if so, how many were held back
// since the last one logged.
func (l *LogThrottle) Allow() (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// refusalLog logs refused connections through a LogThrottle.
type refusalLog struct{ LogThrottle }

func (r *refusalLog) note(log *zerolog.Logger, peer string, limit int, msg string) {
	if n, ok := r.Allow(); ok {
		log.Warn().Str(FieldPeer, peer).Int(FieldLimit, limit).Int(FieldRefused, n).Msg(msg)
	}
}
