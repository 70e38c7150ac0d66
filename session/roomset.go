package session

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/session/names"
	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/trust"
)

const (
	// busWait bounds a session's wait for the message bus (its start, a
	// history read).
	busWait = 30 * time.Second
	// DefaultHistory is how many messages a participant joining a room is
	// shown.
	DefaultHistory = 20
	// MaxHistoryPage is the most messages one !HISTORY returns.
	MaxHistoryPage = 1000
)

// roomSet is the server's rooms, made when first used.
type roomSet struct {
	mu    sync.Mutex
	rooms map[string]*room

	onlineMu sync.Mutex
	online   map[trust.Fingerprint]*onlineKey // chat sessions with a key, by key
}

// onlineKey is the chat sessions of one key on this server.
type onlineKey struct {
	conns map[uint64]*conn
	off   func() // ends the bus's delivery to this key
}

// room returns the room named name (valid: see rooms.RoomName), made and
// subscribed to the bus when first used.
func (s *Server) room(name string) (*room, error) {
	s.rooms.mu.Lock()
	if s.rooms.rooms == nil {
		s.rooms.rooms = make(map[string]*room)
	}
	r := s.rooms.rooms[name]
	if r == nil {
		if len(s.rooms.rooms) >= s.cfg.MaxRooms && name != rooms.DefaultRoom { // the default room is always there
			s.rooms.mu.Unlock()
			return nil, ErrTooManyRooms
		}
		r = &room{name: name, srv: s, bud: s.budget, pingInterval: s.cfg.PingInterval}
		s.rooms.rooms[name] = r
	}
	s.rooms.mu.Unlock()
	return r, r.open()
}

// ErrTooManyRooms: the server has Config.MaxRooms rooms already.
var ErrTooManyRooms = errors.New("the server has as many rooms as it may keep (--max-rooms); join one of them (/rooms lists them)")

// OpenRoom makes the room named name ready, subscribed to the bus, before
// anyone joins it.
func (s *Server) OpenRoom(name string) error {
	_, err := s.room(name)
	return err
}

// allRooms returns the rooms, sorted by name.
func (s *Server) allRooms() []*room {
	s.rooms.mu.Lock()
	rs := make([]*room, 0, len(s.rooms.rooms))
	for _, r := range s.rooms.rooms {
		rs = append(rs, r)
	}
	s.rooms.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	return rs
}

// RoomInfo describes a room of the server.
type RoomInfo struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Rooms returns the server's rooms and their members.
func (s *Server) Rooms() []RoomInfo {
	var out []RoomInfo
	for _, r := range s.allRooms() {
		out = append(out, RoomInfo{Name: r.name, Members: r.names()})
	}
	return out
}

// roomFor is the room a hello asks for: to join (chat) or to post into.
func roomFor(h Hello) (string, error) {
	if h.V < 3 || h.Room == "" {
		if h.Chat {
			return rooms.DefaultRoom, nil
		}
		return "", nil
	}
	return rooms.RoomName(h.Room)
}

// joinRoom moves a chat participant into the room named name.
func (c *conn) joinRoom(name string) {
	r, err := c.srv.room(name)
	if err != nil {
		c.ext.sendOwn(c.srv.budget, Event{Type: EventError, Text: roomError(name, err), Time: time.Now()})
		return
	}
	if old := c.ext.room; old != nil {
		if old == r {
			return
		}
		old.leave(c)
	}
	r.join(c, c.ext.want)
}

// roomError says why room name cannot be used.
func roomError(name string, err error) string {
	if errors.Is(err, ErrTooManyRooms) {
		return "room " + name + ": " + err.Error()
	}
	return "room " + name + " is unavailable: the message bus is down"
}

// post says a message in the session's room: through the bus, whose
// subscription relays it to the members, or, without a bus, directly.
func (c *conn) post(p []byte, t time.Time) {
	r := c.ext.room
	bus := c.srv.cfg.Bus
	if bus == nil {
		r.broadcast(messageEvent(c.ext.name, p, t), c.id)
		return
	}
	m := rooms.Msg{Room: r.name, Name: c.ext.name, Text: p, Time: t, Session: c.id}
	if key, ok := c.tls.Client(); ok {
		m.Key = key.String()
	}
	if err := bus.Publish(context.Background(), &m); err != nil {
		if n, ok := c.srv.busLog.Allow(); ok {
			c.srv.log.Error().Err(err).Str("room", r.name).Int("refused_since_last_log", n).Msg("a room message could not be relayed (it is printed, not shown in the room)")
		}
	}
}

// roomControl handles the control frames of version 3: rooms, history and
// direct messages. It reports whether p was one.
func (c *conn) roomControl(p []byte) bool {
	now := time.Now()
	bud := c.srv.budget
	switch {
	case string(p) == roomsRequest:
		var counts []RoomCount
		for _, r := range c.srv.allRooms() {
			counts = append(counts, RoomCount{Name: r.name, Members: r.count()})
		}
		c.ext.sendOwn(bud, Event{Type: EventRooms, Rooms: counts, Time: now})
	case strings.HasPrefix(string(p), joinPrefix):
		if !c.ext.hello.Chat {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: "only a chat session can join a room", Time: now})
			return true
		}
		name, err := rooms.RoomName(string(p[len(joinPrefix):]))
		if err != nil {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: err.Error(), Time: now})
			return true
		}
		c.joinRoom(name)
	case strings.HasPrefix(string(p), historyPrefix):
		n, err := strconv.Atoi(strings.TrimSpace(string(p[len(historyPrefix):])))
		if err != nil || n < 1 {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: "!HISTORY wants a number of messages, 1 to " + strconv.Itoa(MaxHistoryPage), Time: now})
			return true
		}
		if c.ext.room == nil || !c.ext.hello.Chat {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: "join a room first", Time: now})
			return true
		}
		if c.srv.cfg.Bus == nil {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: "this server keeps no history", Time: now})
			return true
		}
		c.ext.room.sendHistory(c, min(n, MaxHistoryPage))
	case strings.HasPrefix(string(p), dmPrefix):
		var dm DirectMessage
		if err := json.Unmarshal(p[len(dmPrefix):], &dm); err != nil || dm.To == "" {
			c.ext.sendOwn(bud, Event{Type: EventError, Text: `!DM wants {"to":NAME,"text":TEXT}`, Time: now})
			return true
		}
		c.directMessage(dm)
	default:
		return false
	}
	return true
}

// Why a direct message cannot be sent.
var (
	errNoSuchName = errors.New("nobody of that name is here, nor owns that name")
	errNoKey      = errors.New("has no key: direct messages go to a key, so the recipient must chat over TLS")
)

// recipient finds the key a name stands for: its owner in chat_names, or
// the key of the participant of that name in any room.
func (s *Server) recipient(name string) (trust.Fingerprint, string, error) {
	if owners := s.cfg.ChatNames; owners != nil {
		if owned, fp, ok := owners.Owner(name); ok {
			return fp, owned, nil
		}
	}
	for _, r := range s.allRooms() {
		r.mu.RLock()
		for _, m := range r.members {
			if names.Confusable(m.ext.name, name) {
				key, ok := m.tlsp.Load().Client()
				r.mu.RUnlock()
				if !ok {
					return trust.Fingerprint{}, m.ext.name, errNoKey
				}
				return key, m.ext.name, nil
			}
		}
		r.mu.RUnlock()
	}
	return trust.Fingerprint{}, name, errNoSuchName
}

func keyToken(fp trust.Fingerprint) string { return hex.EncodeToString(fp[:]) }

// directMessage sends dm: the sender is told "delivered" once a session of
// the recipient's key has it, or "queued" while it waits for them.
func (c *conn) directMessage(dm DirectMessage) {
	now := time.Now()
	bud := c.srv.budget
	bus := c.srv.cfg.Bus
	if bus == nil {
		c.ext.sendOwn(bud, Event{Type: EventError, Text: "this server has no message bus for direct messages", ID: dm.ID, Time: now})
		return
	}
	if len(dm.Text) > c.srv.cfg.MaxPayload {
		c.ext.sendOwn(bud, Event{Type: EventError, Text: fmt.Sprintf("the direct message is %d bytes, over the server's %d", len(dm.Text), c.srv.cfg.MaxPayload), ID: dm.ID, Time: now})
		return
	}
	key, name, err := c.srv.recipient(dm.To)
	if err != nil {
		c.ext.sendOwn(bud, Event{Type: EventError, Text: "direct message to " + truncate(name, 64) + ": " + err.Error(), ID: dm.ID, Time: now})
		return
	}
	m := rooms.Msg{Name: c.ext.name, To: name, Text: []byte(dm.Text), Time: now, Session: c.id, Ref: dm.ID}
	if k, ok := c.tls.Client(); ok {
		m.Key = k.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	defer cancel()
	delivered, err := bus.SendDM(ctx, keyToken(key), &m)
	switch {
	case err != nil:
		c.srv.log.Warn().Err(err).Uint64(FieldSession, c.id).Msg("direct message not stored")
		c.ext.sendOwn(bud, Event{Type: EventError, Text: "direct message to " + name + " not sent: the message bus failed", ID: dm.ID, Time: now})
	case delivered:
		c.ext.sendOwn(bud, Event{Type: EventDelivered, Name: name, ID: dm.ID, Time: time.Now()})
	default:
		c.ext.sendOwn(bud, Event{Type: EventQueued, Name: name, ID: dm.ID, Time: time.Now()})
	}
}

// goOnline registers a chat session of a key for direct messages: the
// key's first session here subscribes the key on the bus, which delivers
// what waits for it.
func (c *conn) goOnline() {
	bus := c.srv.cfg.Bus
	key, ok := c.tls.Client()
	if bus == nil || !ok {
		return
	}
	s := &c.srv.rooms
	s.onlineMu.Lock()
	if s.online == nil {
		s.online = make(map[trust.Fingerprint]*onlineKey)
	}
	ok2 := s.online[key]
	if ok2 != nil {
		ok2.conns[c.id] = c
		s.onlineMu.Unlock()
		return
	}
	ok2 = &onlineKey{conns: map[uint64]*conn{c.id: c}}
	s.online[key] = ok2
	s.onlineMu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	defer cancel()
	off, err := bus.Online(ctx, keyToken(key), func(m rooms.Msg) bool { return c.srv.deliverDM(key, m) })
	if err != nil {
		c.srv.log.Warn().Err(err).Uint64(FieldSession, c.id).Msg("cannot receive direct messages")
		return
	}
	s.onlineMu.Lock()
	if s.online[key] == ok2 {
		ok2.off = off
		off = nil
	}
	s.onlineMu.Unlock()
	if off != nil {
		off() // every session of the key left meanwhile
	}
}

// goOffline unregisters a chat session of a key.
func (c *conn) goOffline() {
	key, ok := c.tls.Client()
	if c.srv.cfg.Bus == nil || !ok {
		return
	}
	s := &c.srv.rooms
	s.onlineMu.Lock()
	e := s.online[key]
	var off func()
	if e != nil {
		delete(e.conns, c.id)
		if len(e.conns) == 0 {
			delete(s.online, key)
			off = e.off
		}
	}
	s.onlineMu.Unlock()
	if off != nil {
		off()
	}
}

// deliverDM hands a direct message to every chat session of key here, and
// reports whether there was one.
func (s *Server) deliverDM(key trust.Fingerprint, m rooms.Msg) bool {
	s.rooms.onlineMu.Lock()
	defer s.rooms.onlineMu.Unlock()
	e := s.rooms.online[key]
	if e == nil || len(e.conns) == 0 {
		return false
	}
	ev := messageEvent(m.Name, m.Text, m.Time)
	ev.Type = EventDM
	f := s.budget.newFrame(encodeEvent(ev))
	for _, c := range e.conns {
		c.ext.send(f)
	}
	f.release()
	s.budget.enforce()
	return true
}

// delivered tells the sender of a direct message that waited that it was
// delivered, if the sender's session is still here.
func (s *Server) delivered(m rooms.Msg) {
	s.mu.Lock()
	c := s.sessions[m.Session]
	s.mu.Unlock()
	if c == nil || !c.start.Before(m.Time.Add(time.Millisecond)) {
		return
	}
	if e := c.extSession(); e != nil {
		e.sendOwn(s.budget, Event{Type: EventDelivered, Name: m.To, ID: m.Ref, Time: time.Now()})
	}
}
