package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Direct messages. A direct message is to a key (its token: the
// fingerprint's 32 bytes in hex), never to a name. The sender's server
// stores it in its DM stream, then asks, on lanmsg.dmto.KEY, for a server
// with a session of that key to take it; the one that does answers, and
// the message is removed. With nobody to answer, it waits, bounded
// (Limits.DMMsgs per recipient, Limits.DMAge), until a server says that
// the key came online (lanmsg.online.KEY).

func dmSubject(site, key string) string { return "lanmsg.dm." + site + "." + key }
func dmToSubject(key string) string     { return "lanmsg.dmto." + key }
func onlineSubject(key string) string   { return "lanmsg.online." + key }

const (
	replyDelivered = "1"
	replyGone      = "0"
)

// ErrNotDelivered: the recipient is offline; the message waits.
var ErrNotDelivered = errors.New("rooms: recipient offline")

// dmState is the bus's direct-message side.
type dmState struct {
	mu        sync.Mutex
	keyLocks  map[string]*keyLock
	delivered func(Msg) // the sender's server learns a waiting message was delivered
	onlineSub *nats.Subscription
	online    map[string]int // keys with sessions here: how many Online calls are on
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lockKey serialises delivery attempts to one key, so that a message is
// never handed over twice by this server.
func (b *Bus) lockKey(key string) func() {
	d := &b.dm
	d.mu.Lock()
	if d.keyLocks == nil {
		d.keyLocks = make(map[string]*keyLock)
	}
	l := d.keyLocks[key]
	if l == nil {
		l = &keyLock{}
		d.keyLocks[key] = l
	}
	l.refs++
	d.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(d.keyLocks, key)
		}
		d.mu.Unlock()
	}
}

func checkKey(key string) error {
	if key == "" || len(key) > 128 {
		return fmt.Errorf("rooms: key token %q", key)
	}
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("rooms: key token %q is not lowercase hex", key)
		}
	}
	return nil
}

// OnDelivered sets what to call when a direct message that waited is
// delivered: the sender, if still here, is told. Set it before the first
// Online.
func (b *Bus) OnDelivered(fn func(Msg)) {
	b.dm.mu.Lock()
	b.dm.delivered = fn
	b.dm.mu.Unlock()
}

// SendDM stores a direct message to key and tries to deliver it at once.
// It reports whether a session of the recipient took it; if not, it waits
// on this server until the recipient comes online.
func (b *Bus) SendDM(ctx context.Context, key string, m *Msg) (delivered bool, err error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if err := b.wait(ctx); err != nil {
		return false, err
	}
	if m.ID == "" {
		m.ID = newID(b.cfg.Site)
	}
	unlock := b.lockKey(key)
	defer unlock()
	nm := b.encode(dmSubject(b.cfg.Site, key), m)
	nm.Header.Set(headerRecipientKey, key)
	ack, err := b.js.PublishMsg(ctx, nm, jetstream.WithMsgID(m.ID))
	if err != nil {
		return false, fmt.Errorf("rooms: store direct message: %w", err)
	}
	return b.deliver(ctx, key, ack.Sequence, nm), nil
}

// deliver offers a stored message to the recipient's sessions, wherever
// they are, and removes it once taken. Hold the key's lock.
func (b *Bus) deliver(ctx context.Context, key string, seq uint64, nm *nats.Msg) bool {
	req := nats.NewMsg(dmToSubject(key))
	req.Header = nm.Header
	req.Data = nm.Data
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reply, err := b.nc.RequestMsgWithContext(rctx, req)
	if err != nil || string(reply.Data) != replyDelivered {
		return false
	}
	st, err := b.js.Stream(ctx, dmStream)
	if err == nil {
		err = st.DeleteMsg(ctx, seq)
	}
	if err != nil {
		b.log.Warn().Err(err).Msg("a delivered direct message could not be removed from the store")
	}
	return true
}

// Online says that this server has sessions of key: deliver is handed each
// direct message to key, from any site, and reports whether a session took
// it. Messages waiting for key, here or at linked sites, are delivered now.
// off ends it, when the key's last session leaves.
func (b *Bus) Online(ctx context.Context, key string, deliver func(Msg) bool) (off func(), err error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	sub, err := b.nc.Subscribe(dmToSubject(key), func(nm *nats.Msg) {
		m := decode(nm.Subject, nm.Header, nm.Data)
		r := replyGone
		if deliver(m) {
			r = replyDelivered
		}
		_ = nm.Respond([]byte(r))
	})
	if err != nil {
		return nil, err
	}
	if err := b.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	if err := b.nc.Publish(onlineSubject(key), nil); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	b.dm.mu.Lock()
	if b.dm.online == nil {
		b.dm.online = make(map[string]int)
	}
	b.dm.online[key]++
	b.dm.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = sub.Unsubscribe()
			b.dm.mu.Lock()
			if b.dm.online[key]--; b.dm.online[key] <= 0 {
				delete(b.dm.online, key)
			}
			b.dm.mu.Unlock()
		})
	}, nil
}

// AnnounceOnline says again that every key with sessions here is online,
// so that servers holding direct messages for them (at a site whose link
// just came up) deliver them.
func (b *Bus) AnnounceOnline() error {
	if err := b.wait(context.Background()); err != nil {
		return err
	}
	b.dm.mu.Lock()
	keys := make([]string, 0, len(b.dm.online))
	for k := range b.dm.online {
		keys = append(keys, k)
	}
	b.dm.mu.Unlock()
	for _, k := range keys {
		if err := b.nc.Publish(onlineSubject(k), nil); err != nil {
			return err
		}
	}
	return nil
}

// watchOnline retries the waiting direct messages of each key announced
// online. Called once the bus is up.
func (b *Bus) watchOnline() error {
	sub, err := b.nc.Subscribe(onlineSubject("*"), func(nm *nats.Msg) {
		key := nm.Subject[len(onlineSubject("")):]
		if checkKey(key) != nil {
			return
		}
		go b.retry(key)
	})
	if err != nil {
		return err
	}
	b.dm.onlineSub = sub
	return nil
}

// retry delivers the messages waiting here for key, oldest first, until
// one is not taken.
func (b *Bus) retry(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock := b.lockKey(key)
	defer unlock()
	st, err := b.js.Stream(ctx, dmStream)
	if err != nil {
		return
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(dmSubject(b.cfg.Site, key)))
	if err != nil || info.State.Subjects[dmSubject(b.cfg.Site, key)] == 0 {
		return
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{dmSubject(b.cfg.Site, key)}})
	if err != nil {
		b.log.Warn().Err(err).Msg("reading waiting direct messages")
		return
	}
	n := int(info.State.Subjects[dmSubject(b.cfg.Site, key)])
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		return
	}
	for jm := range batch.Messages() {
		md, err := jm.Metadata()
		if err != nil {
			continue
		}
		nm := &nats.Msg{Subject: jm.Subject(), Header: jm.Headers(), Data: jm.Data()}
		if !b.deliver(ctx, key, md.Sequence.Stream, nm) {
			return
		}
		m := decode(nm.Subject, nm.Header, nm.Data)
		b.dm.mu.Lock()
		fn := b.dm.delivered
		b.dm.mu.Unlock()
		if fn != nil && m.Site == b.cfg.Site {
			fn(m)
		}
	}
}

// Waiting counts the direct messages waiting on this server.
func (b *Bus) Waiting(ctx context.Context) (uint64, error) {
	if err := b.wait(ctx); err != nil {
		return 0, err
	}
	st, err := b.js.Stream(ctx, dmStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}
