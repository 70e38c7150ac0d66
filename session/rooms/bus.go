package rooms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// Defaults of Limits. Each is a flag of `lanmsg serve`.
const (
	DefaultRoom        = "general"
	DefaultRoomMsgs    = 10000
	DefaultRoomBytes   = 64 << 20
	DefaultRoomAge     = 30 * 24 * time.Hour
	DefaultDMMsgs      = 100
	DefaultDMAge       = 7 * 24 * time.Hour
	DefaultDMBytes     = 64 << 20
	DefaultStartWait   = 30 * time.Second
	maxRoomName        = 32
	lockName           = "lanmsg.lock"
	dmStream           = "DM"
	publishMaxPending  = 4096
	requestTimeout     = 5 * time.Second
	headerName         = "Lanmsg-Name"
	headerKey          = "Lanmsg-Key"
	headerTime         = "Lanmsg-Time"
	headerSession      = "Lanmsg-Session"
	headerTo           = "Lanmsg-To"
	headerRecipientKey = "Lanmsg-To-Key"
	headerRef          = "Lanmsg-Ref"
	warmupSubject      = "lanmsg.warmup"
)

// ErrClosed: the bus is closed.
var ErrClosed = errors.New("rooms: bus closed")

// InUseError: another server holds the data dir.
type InUseError struct{ Dir string }

func (e *InUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another lanmsg serve", e.Dir)
}

// NameError: a room name outside the policy (see ValidRoom).
type NameError struct{ Name string }

func (e *NameError) Error() string {
	return fmt.Sprintf("room name %q is not 1 to %d of a-z, 0-9, - and _", truncate(e.Name, 40), maxRoomName)
}

var roomRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// RoomName returns the room name s stands for (case folded), or a NameError.
func RoomName(s string) (string, error) {
	r := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "#"))
	if !roomRE.MatchString(r) {
		return "", &NameError{Name: s}
	}
	return r, nil
}

// Limits bound what the bus keeps. Zero values mean the defaults.
type Limits struct {
	RoomMsgs  int64         // messages kept per room
	RoomBytes int64         // bytes kept per room
	RoomAge   time.Duration // age of the oldest message kept in a room
	DMMsgs    int64         // direct messages waiting per recipient
	DMAge     time.Duration // how long a direct message waits
	DMBytes   int64         // bytes of all waiting direct messages together
	MsgSize   int           // largest message (the server's --max-payload)
}

func (l Limits) withDefaults() Limits {
	if l.RoomMsgs == 0 {
		l.RoomMsgs = DefaultRoomMsgs
	}
	if l.RoomBytes == 0 {
		l.RoomBytes = DefaultRoomBytes
	}
	if l.RoomAge == 0 {
		l.RoomAge = DefaultRoomAge
	}
	if l.DMMsgs == 0 {
		l.DMMsgs = DefaultDMMsgs
	}
	if l.DMAge == 0 {
		l.DMAge = DefaultDMAge
	}
	if l.DMBytes == 0 {
		l.DMBytes = DefaultDMBytes
	}
	if l.MsgSize == 0 {
		l.MsgSize = 1 << 20
	}
	return l
}

// Config configures a bus.
type Config struct {
	// DataDir holds the embedded server's JetStream store (DataDir/jetstream)
	// and its lock (DataDir/lanmsg.lock). Ignored with URL.
	DataDir string
	// URL, when set, is an existing NATS deployment (with JetStream) used
	// instead of the embedded server.
	URL string
	// Site names this server among linked ones: the server key's id (16
	// hex digits). It is the embedded server's JetStream domain and the
	// last token of the subjects this server publishes rooms on.
	Site   string
	Limits Limits
	// ConfigureServer, when set, may change the embedded server's options
	// before it starts (the link layer adds leaf nodes here).
	ConfigureServer func(*server.Options) error
	// StartWait bounds the embedded server's start (JetStream recovering
	// its store included).
	StartWait time.Duration
	Log       *zerolog.Logger
}

// Msg is one message in a room, or a direct message.
type Msg struct {
	Room    string
	Seq     uint64 // in the room's stream on this server
	ID      string // unique across sites (Nats-Msg-Id)
	Name    string // the sender's display name
	Key     string // the sender's key fingerprint, if any
	Text    []byte
	Time    time.Time
	Site    string // where it was said
	Session uint64 // the sending session, at Site
	To      string // a direct message: the recipient's display name
	Ref     string // a direct message: the sender's reference for it
}

// Bus is the server's message bus and store. Start returns at once; the
// embedded server starts in the background, and the bus's methods wait for
// it.
type Bus struct {
	cfg    Config
	log    *zerolog.Logger
	unlock func()

	ready chan struct{} // closed when started, or failed (err)
	err   error
	ns    *server.Server
	nc    *nats.Conn
	js    jetstream.JetStream

	mu      sync.Mutex
	streams map[string]bool // room streams known to exist
	sites   []string        // linked sites rooms source from
	closed  bool

	dm dmState
}

// Start takes the data dir's lock and starts the bus in the background. It
// fails at once only when the data dir cannot be made or is in use.
func Start(cfg Config) (*Bus, error) {
	if cfg.Site == "" || strings.ContainsAny(cfg.Site, ".*> \t") {
		return nil, fmt.Errorf("rooms: site %q is not a subject token", cfg.Site)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.StartWait == 0 {
		cfg.StartWait = DefaultStartWait
	}
	b := &Bus{cfg: cfg, log: cfg.Log, ready: make(chan struct{}), streams: make(map[string]bool)}
	if b.log == nil {
		nop := zerolog.Nop()
		b.log = &nop
	}
	if cfg.URL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("rooms: data dir: %w", err)
		}
		unlock, err := lockDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.unlock = unlock
	}
	go func() {
		b.err = b.start()
		if b.err != nil {
			b.log.Error().Err(b.err).Msg("message bus failed to start: rooms, history and direct messages are unavailable")
		}
		close(b.ready)
	}()
	return b, nil
}

// Ready is closed once the bus has started or failed (Err).
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Err is why the bus failed to start, once Ready is closed.
func (b *Bus) Err() error { <-b.ready; return b.err }

// Site is this server's site.
func (b *Bus) Site() string { return b.cfg.Site }

func (b *Bus) start() error {
	t0 := time.Now()
	if b.cfg.URL != "" {
		nc, err := nats.Connect(b.cfg.URL, nats.Name("lanmsg "+b.cfg.Site), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("rooms: connect to %s: %w", b.cfg.URL, err)
		}
		b.nc = nc
	} else {
		opts := &server.Options{
			ServerName:      "lanmsg-" + b.cfg.Site,
			DontListen:      true,
			NoSigs:          true,
			NoLog:           true,
			JetStream:       true,
			JetStreamDomain: b.cfg.Site,
			StoreDir:        filepath.Join(b.cfg.DataDir, "jetstream"),
			MaxPayload:      int32(b.cfg.Limits.MsgSize + 8<<10),
		}
		if b.cfg.ConfigureServer != nil {
			if err := b.cfg.ConfigureServer(opts); err != nil {
				return err
			}
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			return fmt.Errorf("rooms: embedded server: %w", err)
		}
		ns.SetLoggerV2(natsLogger{b.log}, false, false, false)
		ns.Start()
		if !ns.ReadyForConnections(b.cfg.StartWait) {
			ns.Shutdown()
			return fmt.Errorf("rooms: embedded server not ready within %v", b.cfg.StartWait)
		}
		b.ns = ns
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("lanmsg"))
		if err != nil {
			ns.Shutdown()
			return fmt.Errorf("rooms: connect to the embedded server: %w", err)
		}
		b.nc = nc
	}
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(publishMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if m.Subject != warmupSubject {
				b.log.Warn().Err(err).Str("subject", m.Subject).Msg("a message was not stored")
			}
		}))
	if err != nil {
		return err
	}
	b.js = js
	// The client's machinery for asynchronous publishes starts with the
	// first one: start it now, with a message nothing stores, so that the
	// server's goroutines are all there from the start.
	if _, err := js.PublishMsgAsync(&nats.Msg{Subject: warmupSubject}, jetstream.WithRetryAttempts(0)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.StartWait)
	defer cancel()
	l := b.cfg.Limits
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              dmStream,
		Subjects:          []string{"lanmsg.dm." + b.cfg.Site + ".*"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: l.DMMsgs,
		MaxAge:            l.DMAge,
		MaxBytes:          l.DMBytes,
		MaxMsgSize:        int32(l.MsgSize + 4<<10),
		Discard:           jetstream.DiscardOld,
	}); err != nil {
		return fmt.Errorf("rooms: direct message stream: %w", err)
	}
	if err := b.watchOnline(); err != nil {
		return err
	}
	b.log.Info().Dur("took", time.Since(t0)).Str("site", b.cfg.Site).Str("data_dir", b.cfg.DataDir).Str("nats", b.cfg.URL).Msg("message bus ready")
	return nil
}

// wait waits for the bus to be ready.
func (b *Bus) wait(ctx context.Context) error {
	select {
	case <-b.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.err != nil {
		return b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close stops the bus: pending publishes are flushed, the embedded server
// stops and the data dir is unlocked.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	<-b.ready
	if b.js != nil {
		select {
		case <-b.js.PublishAsyncComplete():
		case <-time.After(2 * time.Second):
		}
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.unlock != nil {
		b.unlock()
	}
	return nil
}

func streamName(room string) string { return "ROOM_" + room }

func roomSubject(room, site string) string { return "lanmsg.room." + room + "." + site }

// ensureRoom makes the room's stream, sourcing from every linked site.
func (b *Bus) ensureRoom(ctx context.Context, room string) error {
	b.mu.Lock()
	ok := b.streams[room]
	sites := append([]string(nil), b.sites...)
	b.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, b.roomConfig(room, sites)); err != nil {
		return fmt.Errorf("rooms: stream of room %s: %w", room, err)
	}
	b.mu.Lock()
	b.streams[room] = true
	b.mu.Unlock()
	return nil
}

func (b *Bus) roomConfig(room string, sites []string) jetstream.StreamConfig {
	l := b.cfg.Limits
	cfg := jetstream.StreamConfig{
		Name:       streamName(room),
		Subjects:   []string{roomSubject(room, b.cfg.Site)},
		Storage:    jetstream.FileStorage,
		MaxMsgs:    l.RoomMsgs,
		MaxBytes:   l.RoomBytes,
		MaxAge:     l.RoomAge,
		MaxMsgSize: int32(l.MsgSize + 4<<10),
		Discard:    jetstream.DiscardOld,
		Duplicates: 2 * time.Minute,
	}
	for _, s := range sites {
		cfg.Sources = append(cfg.Sources, &jetstream.StreamSource{
			Name:          streamName(room),
			FilterSubject: roomSubject(room, s),
			Domain:        s,
		})
	}
	return cfg
}

// AddSite makes every room, present and future, source the same room from
// site (a linked server's JetStream domain), filtered to what was said
// there.
func (b *Bus) AddSite(ctx context.Context, site string) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	for _, s := range b.sites {
		if s == site {
			b.mu.Unlock()
			return nil
		}
	}
	b.sites = append(b.sites, site)
	sites := append([]string(nil), b.sites...)
	var rooms []string
	for r := range b.streams {
		rooms = append(rooms, r)
	}
	b.mu.Unlock()
	var errs []error
	for _, r := range rooms {
		if _, err := b.js.UpdateStream(ctx, b.roomConfig(r, sites)); err != nil {
			errs = append(errs, fmt.Errorf("rooms: source room %s from %s: %w", r, site, err))
		}
	}
	return errors.Join(errs...)
}

func newID(site string) string { return site + "." + nuid.Next() }

// Publish stores m in its room and hands it to every subscriber of the
// room. It waits for the bus, and, when many publishes are waiting to be
// stored, for them: that is the back-pressure on a fast sender.
func (b *Bus) Publish(ctx context.Context, m *Msg) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	if err := b.ensureRoom(ctx, m.Room); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = newID(b.cfg.Site)
	}
	nm := b.encode(roomSubject(m.Room, b.cfg.Site), m)
	// The client keeps the message until it is acknowledged (to retry
	// it), and the caller's buffer is reused: give it a copy.
	nm.Data = bytes.Clone(m.Text)
	for {
		_, err := b.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID))
		// Stalled: publishMaxPending messages wait for their acks. Wait
		// on, rather than drop the message: the sender is slowed down.
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
			return err
		}
	}
}

func (b *Bus) encode(subject string, m *Msg) *nats.Msg {
	nm := nats.NewMsg(subject)
	nm.Data = m.Text
	nm.Header.Set(headerName, m.Name)
	if m.Key != "" {
		nm.Header.Set(headerKey, m.Key)
	}
	nm.Header.Set(headerTime, m.Time.UTC().Format(time.RFC3339Nano))
	nm.Header.Set(headerSession, b.cfg.Site+"."+strconv.FormatUint(m.Session, 10))
	if m.To != "" {
		nm.Header.Set(headerTo, m.To)
	}
	if m.Ref != "" {
		nm.Header.Set(headerRef, m.Ref)
	}
	return nm
}

func decode(subject string, h nats.Header, data []byte) Msg {
	m := Msg{Text: data, Name: h.Get(headerName), Key: h.Get(headerKey), ID: h.Get(nats.MsgIdHdr), To: h.Get(headerTo), Ref: h.Get(headerRef)}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(headerTime)); err == nil {
		m.Time = t
	}
	if s, id, ok := strings.Cut(h.Get(headerSession), "."); ok {
		m.Site = s
		m.Session, _ = strconv.ParseUint(id, 10, 64)
	}
	if parts := strings.Split(subject, "."); len(parts) == 4 && parts[1] == "room" {
		m.Room = parts[2]
	}
	return m
}

// Subscribe hands fn every message that reaches room's stream after the
// one numbered last (which it returns: the stream's last message when it
// subscribed), said here or sourced from a linked site, once each, in the
// stream's order, from one goroutine. stop ends it.
func (b *Bus) Subscribe(ctx context.Context, room string, fn func(Msg)) (last uint64, stop func(), err error) {
	if err := b.wait(ctx); err != nil {
		return 0, nil, err
	}
	if err := b.ensureRoom(ctx, room); err != nil {
		return 0, nil, err
	}
	st, err := b.js.Stream(ctx, streamName(room))
	if err != nil {
		return 0, nil, fmt.Errorf("rooms: subscribe to room %s: %w", room, err)
	}
	last = st.CachedInfo().State.LastSeq
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1})
	if err != nil {
		return 0, nil, fmt.Errorf("rooms: subscribe to room %s: %w", room, err)
	}
	cc, err := cons.Consume(func(jm jetstream.Msg) {
		m := decode(jm.Subject(), jm.Headers(), jm.Data())
		if md, err := jm.Metadata(); err == nil {
			m.Seq = md.Sequence.Stream
		}
		fn(m)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("rooms: subscribe to room %s: %w", room, err)
	}
	return last, cc.Stop, nil
}

// History returns up to n messages of room, oldest first: the last ones,
// or, with before > 0, the last ones before the message numbered before;
// and how many older ones the room keeps.
func (b *Bus) History(ctx context.Context, room string, n int, before uint64) (msgs []Msg, older uint64, err error) {
	if n <= 0 {
		return nil, 0, nil
	}
	if err := b.wait(ctx); err != nil {
		return nil, 0, err
	}
	if err := b.ensureRoom(ctx, room); err != nil {
		return nil, 0, err
	}
	st, err := b.js.Stream(ctx, streamName(room))
	if err != nil {
		return nil, 0, err
	}
	info := st.CachedInfo()
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, 0, nil
	}
	end := last
	if before > 0 && before-1 < end {
		end = before - 1
	}
	if end < first {
		return nil, 0, nil
	}
	start := first
	if end+1 > uint64(n) && end+1-uint64(n) > first {
		start = end + 1 - uint64(n)
	}
	older = start - first
	msgs, err = b.fetch(ctx, st, start, end)
	return msgs, older, err
}

// fetch reads the messages numbered start to end of a stream.
func (b *Bus) fetch(ctx context.Context, st jetstream.Stream, start, end uint64) ([]Msg, error) {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil, err
	}
	want := int(end - start + 1)
	out := make([]Msg, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, err
		}
		got := 0
		for jm := range batch.Messages() {
			got++
			md, err := jm.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > end {
				return out, nil
			}
			m := decode(jm.Subject(), jm.Headers(), jm.Data())
			m.Seq = md.Sequence.Stream
			out = append(out, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
		if got == 0 {
			break
		}
	}
	return out, nil
}

// RoomStats describes a room's stream.
type RoomStats struct {
	Room     string `json:"room"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Sources  int    `json:"sources"`
}

// Stats describes the streams of the rooms this server has used.
func (b *Bus) Stats(ctx context.Context) ([]RoomStats, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	var out []RoomStats
	lister := b.js.ListStreams(ctx)
	for info := range lister.Info() {
		name, ok := strings.CutPrefix(info.Config.Name, "ROOM_")
		if !ok {
			continue
		}
		out = append(out, RoomStats{Room: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Sources: len(info.Sources)})
	}
	return out, lister.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// natsLogger bridges the embedded server's log into zerolog: warnings and
// errors only, but leaf-node ones at debug: they repeat on every reconnect
// while a link is down, and the link layer logs links itself.
type natsLogger struct{ log *zerolog.Logger }

func (l natsLogger) Noticef(string, ...any)         {}
func (l natsLogger) Tracef(string, ...any)          {}
func (l natsLogger) Debugf(string, ...any)          {}
func (l natsLogger) Warnf(format string, v ...any)  { l.emit(zerolog.WarnLevel, format, v) }
func (l natsLogger) Errorf(format string, v ...any) { l.emit(zerolog.ErrorLevel, format, v) }

func (l natsLogger) emit(lvl zerolog.Level, format string, v []any) {
	msg := fmt.Sprintf(format, v...)
	if low := strings.ToLower(msg); strings.Contains(low, "leafnode") || strings.Contains(low, "leaf node") || strings.Contains(low, " lid:") {
		lvl = zerolog.DebugLevel
	}
	l.log.WithLevel(lvl).Str("component", "nats").Msg(msg)
}
func (l natsLogger) Fatalf(format string, v ...any) { l.emit(zerolog.ErrorLevel, format, v) }
