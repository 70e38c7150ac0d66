package session

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/session/names"
	"github.com/lanmsg/lanmsg/session/rooms"
)

const (
	// presenceDelay is how long joins and leaves wait to be announced, so
	// that a burst of them reaches each member as a few events listing
	// many names, not one event per join: with one event per join, N
	// members joining cost N² events.
	presenceDelay = 50 * time.Millisecond
	// maxListedBytes bounds the names listed in one event (welcome, who,
	// join, leave); the rest are counted in its "more".
	maxListedBytes = 32 << 10
)

// room is one chat room on this server: the extended sessions that joined
// it. With a message bus, the room's messages reach it through one
// subscription (relay), which fans each out to the members as one shared
// frame; without one, a member's message is fanned out directly.
type room struct {
	name         string
	srv          *Server
	bud          *budget
	pingInterval time.Duration

	once    sync.Once
	err     error  // the subscription could not be made
	stopSub func() // ends the subscription

	mu      sync.RWMutex
	members map[uint64]*conn
	// Joins and leaves not yet announced, in order, and the timer that
	// will announce them.
	presence []presenceChange
	flush    *time.Timer
	pinger   *time.Timer
	lastSeq  uint64 // the last message relayed from the bus
}

// open subscribes the room to the bus, once.
func (r *room) open() error {
	r.once.Do(func() {
		bus := r.srv.cfg.Bus
		if bus == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), busWait)
		defer cancel()
		last, stop, err := bus.Subscribe(ctx, r.name, r.relay)
		if err != nil {
			r.err = err
			r.srv.log.Error().Err(err).Str("room", r.name).Msg("cannot subscribe to the room on the message bus")
			return
		}
		r.mu.Lock()
		r.lastSeq, r.stopSub = last, stop
		r.mu.Unlock()
	})
	return r.err
}

// relay fans a message from the bus out to the members, but not back to
// the session that said it.
func (r *room) relay(m rooms.Msg) {
	ev := messageEvent(m.Name, m.Text, m.Time)
	ev.Room = r.name
	var except uint64
	if m.Site == r.srv.cfg.Bus.Site() {
		except = m.Session
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSeq = m.Seq
	if len(r.presence) > 0 {
		r.announceLocked()
	}
	r.sendAllLocked(ev, except)
}

type presenceChange struct {
	join bool
	name string
	id   uint64 // the session
}

// join adds c under a name unique in the room, and queues c's welcome
// (that name, and the names present, c's included) before anyone else can
// send it anything. The others learn of it with the next presence event.
func (r *room) join(c *conn, want string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = make(map[uint64]*conn)
	}
	taken := make(map[string]bool, 2*len(r.members))
	for _, m := range r.members {
		for _, k := range names.Keys(m.ext.name) {
			taken[k] = true
		}
	}
	name := c.chatName(want, taken)
	c.ext.name = name
	c.ext.room = r
	r.members[c.id] = c
	names, more := listNames(r.namesLocked())
	c.ext.sendOwn(r.bud, Event{Type: EventWelcome, Name: name, Names: names, More: more, Time: time.Now(), Max: c.srv.cfg.MaxPayload, Room: r.name})
	// History goes before anything relayed after it: it is read while the
	// relay waits for the lock, up to the last message relayed.
	c.ext.histBefore = r.lastSeq + 1
	if c.ext.hello.V >= 3 {
		r.sendHistory(c, c.srv.cfg.History)
	}
	r.changedLocked(presenceChange{join: true, name: name, id: c.id})
	if r.pinger == nil && r.pingInterval > 0 {
		r.pinger = time.AfterFunc(r.pingInterval, r.ping)
	}
}

// sendHistory sends c up to n messages of the room before the ones it was
// shown, marked as history, and then a "history" event that counts them.
// It stops early rather than send more than half the client's send queue.
func (r *room) sendHistory(c *conn, n int) {
	bus := r.srv.cfg.Bus
	if bus == nil || n <= 0 || c.ext.histBefore <= 1 {
		if n > 0 && c.ext.hello.V >= 3 {
			c.ext.sendOwn(r.bud, Event{Type: EventHistory, Room: r.name, Time: time.Now()})
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	defer cancel()
	msgs, older, err := bus.History(ctx, r.name, n, c.ext.histBefore)
	if err != nil {
		r.srv.log.Warn().Err(err).Str("room", r.name).Msg("cannot read the room's history")
		c.ext.sendOwn(r.bud, Event{Type: EventError, Text: "the room's history cannot be read now", Time: time.Now()})
		return
	}
	// Keep the newest that fit in half the send queue.
	size := 0
	for i := len(msgs) - 1; i >= 0; i-- {
		size += len(msgs[i].Text)*4/3 + 256
		if size > r.srv.cfg.SendQueue/2 {
			older += uint64(i + 1)
			msgs = msgs[i+1:]
			break
		}
	}
	for _, m := range msgs {
		ev := messageEvent(m.Name, m.Text, m.Time)
		ev.Room, ev.Seq, ev.History = r.name, m.Seq, true
		c.ext.sendOwn(r.bud, ev)
	}
	if len(msgs) > 0 {
		c.ext.histBefore = msgs[0].Seq
	}
	c.ext.sendOwn(r.bud, Event{Type: EventHistory, Room: r.name, N: int64(len(msgs)), More: int(older), Time: time.Now()})
}

// leave removes c; it reports whether c was a member.
func (r *room) leave(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[c.id]; !ok {
		return false
	}
	delete(r.members, c.id)
	r.changedLocked(presenceChange{name: c.ext.name, id: c.id})
	return true
}

// changedLocked queues a join or leave to be announced.
func (r *room) changedLocked(p presenceChange) {
	r.presence = append(r.presence, p)
	if r.flush == nil {
		r.flush = time.AfterFunc(presenceDelay, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.announceLocked()
		})
	}
}

// announceLocked sends the pending joins and leaves to every member: one
// event for each run of joins or of leaves.
func (r *room) announceLocked() {
	if r.flush != nil {
		r.flush.Stop()
		r.flush = nil
	}
	pending := r.presence
	r.presence = nil
	now := time.Now()
	for len(pending) > 0 {
		join := pending[0].join
		n := 1
		for n < len(pending) && pending[n].join == join {
			n++
		}
		names := make([]string, n)
		for i, p := range pending[:n] {
			names[i] = p.name
		}
		// A lone join goes to everyone but the one who joined, who has its
		// welcome. In a batch, those who joined may see names they know.
		except := pending[0].id
		if n > 1 {
			except = 0
		}
		pending = pending[n:]
		ev := Event{Type: EventLeave, Time: now}
		if join {
			ev.Type = EventJoin
		}
		if len(names) == 1 {
			ev.Name = names[0]
		} else {
			ev.Names, ev.More = listNames(names)
		}
		r.sendAllLocked(ev, except)
	}
}

// broadcast sends a chat message event to every member but except. Joins
// and leaves waiting to be announced go first, so that nobody sees a
// message from someone not yet announced.
func (r *room) broadcast(ev Event, except uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.presence) > 0 {
		r.announceLocked()
	}
	r.sendAllLocked(ev, except)
}

// sendAllLocked encodes ev once and queues the same frame for every member
// but except.
func (r *room) sendAllLocked(ev Event, except uint64) {
	if len(r.members) == 0 || len(r.members) == 1 && r.members[except] != nil {
		return
	}
	f := r.bud.newFrame(encodeEvent(ev))
	var f1 *sharedFrame // the version 1 form, made for the first member that needs it
	ev1, differs := ev.v1()
	for id, m := range r.members {
		if id == except {
			continue
		}
		switch {
		case m.ext.hello.V >= 2 || !differs:
			if ev.Type != EventPing || m.ext.hello.V >= 2 {
				m.ext.send(f)
			}
		default:
			if f1 == nil {
				f1 = r.bud.newFrame(encodeEvent(ev1))
			}
			m.ext.send(f1)
		}
	}
	f.release()
	if f1 != nil {
		f1.release()
	}
	r.bud.enforce() // now that every holder is charged for it
}

// ping asks every member to show it is alive (see Config.PingInterval), and
// re-arms itself while the room has members.
func (r *room) ping() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinger == nil { // stopped
		return
	}
	if len(r.members) == 0 {
		r.pinger = nil
		return
	}
	r.sendAllLocked(Event{Type: EventPing}, 0)
	r.pinger.Reset(r.pingInterval)
}

// stop ends the room's timers and subscription, at shutdown.
func (r *room) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopSub != nil {
		r.stopSub()
		r.stopSub = nil
	}
	if r.pinger != nil {
		r.pinger.Stop()
		r.pinger = nil
	}
	if r.flush != nil {
		r.flush.Stop()
		r.flush = nil
	}
}

func (r *room) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.members)
}

func (r *room) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *room) namesLocked() []string {
	names := make([]string, 0, len(r.members))
	for _, m := range r.members {
		names = append(names, m.ext.name)
	}
	sort.Strings(names)
	return names
}

// listNames keeps the names that fit in maxListedBytes and counts the rest.
func listNames(names []string) (listed []string, more int) {
	size := 0
	for i, n := range names {
		size += len(n)*6 + 3 // each byte escaped at worst, quotes and comma
		if size > maxListedBytes {
			return names[:i], len(names) - i
		}
	}
	return names, 0
}
