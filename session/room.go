package session

import (
	"sort"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/session/names"
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

// room is the server's chat room: the extended sessions that joined it.
type room struct {
	bud          *budget
	pingInterval time.Duration

	mu      sync.RWMutex
	members map[uint64]*conn
	// Joins and leaves not yet announced, in order, and the timer that
	// will announce them.
	presence []presenceChange
	flush    *time.Timer
	pinger   *time.Timer
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
	r.members[c.id] = c
	names, more := listNames(r.namesLocked())
	c.ext.sendOwn(r.bud, Event{Type: EventWelcome, Name: name, Names: names, More: more, Time: time.Now(), Max: c.srv.cfg.MaxPayload})
	r.changedLocked(presenceChange{join: true, name: name, id: c.id})
	if r.pinger == nil && r.pingInterval > 0 {
		r.pinger = time.AfterFunc(r.pingInterval, r.ping)
	}
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

// stop ends the room's timers, at shutdown.
func (r *room) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinger != nil {
		r.pinger.Stop()
		r.pinger = nil
	}
	if r.flush != nil {
		r.flush.Stop()
		r.flush = nil
	}
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
