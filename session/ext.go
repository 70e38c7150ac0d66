package session

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lanmsg/lanmsg/transport"
)

// The two-way extension. A plain session (the tutorial's) is one-way: the
// client sends, the server never writes. A client opts in to the extension
// by making its first frame a hello:
//
//	!HELLO {"v":1,"name":"alice@laptop","chat":true}
//
// The server then writes frames back on the same connection, in the same
// 64-byte-header framing, each one a JSON event (see Event): receipts
// ("ack"), and for chat sessions the room's messages, joins and leaves.
//
// In an extended session, client frames that begin with "!" are control
// frames ("!DISCONNECT", "!WHO"); a message whose text begins with "!" is
// sent with one more "!" in front, which the server removes. Everything the
// server sends is a JSON object whose "t" field says what it is, and other
// participants' text only ever appears inside a "text" field, so no message
// can pass for a control frame in either direction.
//
// Servers that support the extension advertise TXT hello=1; clients send a
// hello only to those, or when told to.
const (
	// HelloPrefix starts the hello frame.
	HelloPrefix = "!HELLO "
	// ProtocolVersion is the extension's version, the hello's "v". Version
	// 2 added pings (which a chat client must answer), text in base64
	// "data" when that is shorter, joins and leaves batched in "names",
	// and the server's payload limit in the welcome's "max". The server
	// still serves version 1 clients as before: no pings, text always in
	// "text", a batch of names joined into "name". Version 3 added rooms
	// (the hello's "room", !JOIN, !ROOMS), history on join and !HISTORY,
	// and direct messages (!DM); a version 2 client is in the default room
	// and is sent no history.
	ProtocolVersion = 3
	// whoRequest asks for the list of chat participants.
	whoRequest = "!WHO"
	// pongFrame answers a ping.
	pongFrame = "!PONG"
	// joinPrefix moves a chat participant to another room: "!JOIN NAME".
	joinPrefix = "!JOIN "
	// roomsRequest asks for the rooms and their member counts.
	roomsRequest = "!ROOMS"
	// historyPrefix asks for N more messages before those shown:
	// "!HISTORY N".
	historyPrefix = "!HISTORY "
	// dmPrefix sends a direct message: "!DM " and a DirectMessage in JSON.
	dmPrefix = "!DM "
)

// DirectMessage is what a client's "!DM" frame carries.
type DirectMessage struct {
	To   string `json:"to"`           // the recipient's chat name
	Text string `json:"text"`         // the message
	ID   string `json:"id,omitempty"` // the client's reference, returned in "delivered" and "queued"
}

// RoomCount is a room and how many are in it, in a "rooms" event.
type RoomCount struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// Hello is the client's opening of an extended session.
type Hello struct {
	V    int    `json:"v"`              // ProtocolVersion
	Name string `json:"name,omitempty"` // display name, for chat
	Chat bool   `json:"chat,omitempty"` // join the server's chat room
	// Room (v3) is the room to join (chat) or to post every message into
	// (not chat: send --room). Empty: the default room for chat, none
	// otherwise.
	Room string `json:"room,omitempty"`
}

// Event types, the "t" of an Event.
const (
	EventWelcome = "welcome" // reply to the hello: Name is the name given, Names the participants
	EventAck     = "ack"     // N messages of this session are written to the server's output
	EventMessage = "msg"     // a chat message: Name said Text at Time
	EventJoin    = "join"    // Name joined the chat
	EventLeave   = "leave"   // Name left the chat
	EventWho     = "who"     // Names are in the chat
	EventError   = "error"   // Text says what the server refused
	EventPing    = "ping"    // the client must answer !PONG (chat liveness)
	// Version 3.
	EventHistory   = "history"   // the history just sent: N messages, More older ones
	EventRooms     = "rooms"     // answer to !ROOMS: Rooms
	EventDM        = "dm"        // a direct message: Name said Text to this participant
	EventDelivered = "delivered" // the direct message ID to Name reached a session of theirs
	EventQueued    = "queued"    // the direct message ID to Name waits until they connect
)

// Event is one server-to-client frame of an extended session.
//
// A message's text travels in "text", or, when JSON escaping would make it
// longer than base64 would (text full of control bytes or invalid UTF-8),
// as base64 in "data": so an event is never much larger than its payload
// (see MaxEventSize). The Client puts data back into Text.
type Event struct {
	Type  string    `json:"t"`
	N     int64     `json:"n,omitempty"`
	Name  string    `json:"name,omitempty"`
	Text  string    `json:"text,omitempty"`
	Data  []byte    `json:"data,omitempty"`
	Time  time.Time `json:"time,omitzero"`
	Names []string  `json:"names,omitempty"`
	More  int       `json:"more,omitempty"` // names not listed in Names, to bound the event's size
	Max   int       `json:"max,omitempty"`  // in the welcome: the server's largest message (its --max-payload)
	// Version 3.
	Room    string      `json:"room,omitempty"`    // the room a welcome, message, join, leave, who or history is about
	Seq     uint64      `json:"seq,omitempty"`     // a message's number in its room (history)
	History bool        `json:"history,omitempty"` // a message from the room's history
	ID      string      `json:"id,omitempty"`      // a direct message's reference (the client's)
	Rooms   []RoomCount `json:"rooms,omitempty"`   // in "rooms"
}

// v1 returns ev as a version 1 client understands it (see ProtocolVersion),
// and whether that differs from ev.
func (ev Event) v1() (Event, bool) {
	switch {
	case ev.Data != nil:
		ev.Text, ev.Data = string(ev.Data), nil
		return ev, true
	case len(ev.Names) > 0 && (ev.Type == EventJoin || ev.Type == EventLeave):
		ev.Name = strings.Join(ev.Names, ", ")
		if ev.More > 0 {
			ev.Name += fmt.Sprintf(" and %d more", ev.More)
		}
		ev.Names, ev.More = nil, 0
		return ev, true
	}
	return ev, false
}

// eventOverhead bounds everything in an event but its text: type, name,
// time, and the names listed (at most maxListedBytes).
const eventOverhead = maxListedBytes + 8<<10

// MaxEventSize is the largest event a lanmsg server sends when it accepts
// messages of up to maxPayload bytes: the payload in base64, at worst, and
// the rest of the event. Clients refuse larger frames.
func MaxEventSize(maxPayload int) int {
	return base64.StdEncoding.EncodedLen(maxPayload) + eventOverhead
}

// messageEvent is the event for a chat message, its text carried in the
// more compact of the two forms.
func messageEvent(name string, text []byte, t time.Time) Event {
	ev := Event{Type: EventMessage, Name: name, Time: t}
	if jsonStringLen(text) > base64.StdEncoding.EncodedLen(len(text)) {
		ev.Data = text
	} else {
		ev.Text = string(text)
	}
	return ev
}

// jsonStringLen is the length of s escaped as a JSON string by
// encoding/json without HTML escaping, quotes excluded.
func jsonStringLen(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// encodeFrame encodes an event as a whole frame.
func encodeFrame(e Event) []byte {
	p := encodeEvent(e)
	return transport.AppendFrame(make([]byte, 0, transport.HeaderSize+len(p)), p)
}

// ErrReservedMessage: a plain session cannot carry a message that is exactly
// "!DISCONNECT"; the server would take it for the end of the session.
var ErrReservedMessage = errors.New("the message is exactly !DISCONNECT, which ends a plain session")

// ErrHelloMessage: a plain session cannot start with a message that is a
// valid hello; a lanmsg server would take it for one and not print it.
var ErrHelloMessage = errors.New("the first message is a valid !HELLO, which a lanmsg server would take for the start of an extended session")

// parseHello recognises a hello frame. A frame that merely starts with
// "!HELLO " but does not hold a valid hello is an ordinary message, so that a
// plain client's text is never misread.
func parseHello(p []byte) (Hello, bool) {
	rest, ok := bytes.CutPrefix(p, []byte(HelloPrefix))
	if !ok {
		return Hello{}, false
	}
	var h Hello
	if err := json.Unmarshal(rest, &h); err != nil || h.V < 1 {
		return Hello{}, false
	}
	return h, true
}

func encodeHello(h Hello) []byte {
	b, _ := json.Marshal(h)
	return append([]byte(HelloPrefix), b...)
}

// encodeEvent encodes an event. No HTML escaping: it would turn each <, >
// and & of a message into six bytes, for nobody's benefit.
func encodeEvent(e Event) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(e)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// escapeBang returns msg as an extended session sends it: with one more "!"
// in front when it starts with "!".
func escapeBang(dst, msg []byte) []byte {
	if len(msg) > 0 && msg[0] == '!' {
		dst = append(dst[:0], '!')
		return append(dst, msg...)
	}
	return msg
}
