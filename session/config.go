package session

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/trust"
	"github.com/lanmsg/lanmsg/transport"
)

// Defaults for Config. Each is a flag of `lanmsg serve`.
const (
	DefaultMaxSessions   = 1024
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultHeaderTimeout = 10 * time.Second
	DefaultReadTimeout   = 30 * time.Second
	// DefaultMaxSessionsPerHost leaves most of DefaultMaxSessions to
	// others when one address takes all it can; no real LAN host needs
	// more.
	DefaultMaxSessionsPerHost = 64
	// DefaultMinRate and DefaultMinRateWindow: a frame under way must
	// bring 1 KiB a second, measured over 10 s windows.
	DefaultMinRate       = 1 << 10
	DefaultMinRateWindow = 10 * time.Second
	// MinMinRateWindow and MaxMinRateWindow bound MinRateWindow: shorter
	// windows would wake a trickling session needlessly often; longer ones
	// let a trickle hold its slot longer.
	MinMinRateWindow = time.Second
	MaxMinRateWindow = time.Minute
	// MaxMinRate bounds MinRate: no LAN client must send faster than this.
	MaxMinRate = 1 << 30
	// DefaultPingInterval: the server pings chat participants this often,
	// and drops one silent for two intervals.
	DefaultPingInterval = 30 * time.Second
	// DefaultMaxRooms: far more rooms than a LAN uses, few enough that
	// their subscriptions and streams stay small.
	DefaultMaxRooms = 256
)

// Config holds a server's limits. The zero value of a field means its
// default; Validate reports values that make no sense.
type Config struct {
	// MaxPayload is the largest message accepted, in bytes. A header claiming
	// more ends the session before any of the payload is read.
	MaxPayload int

	// MaxSessions is how many sessions may be open at once. Connections
	// beyond it are accepted and reset at once, and logged.
	MaxSessions int

	// IdleTimeout closes a session that sends nothing for this long between
	// frames.
	IdleTimeout time.Duration

	// HeaderTimeout is how long a client has to complete a 64-byte header
	// once its first byte arrived.
	HeaderTimeout time.Duration

	// ReadTimeout closes a session that stalls inside a frame: no byte of
	// the header or payload for this long. A client that keeps trickling
	// bytes still gets its frame through.
	ReadTimeout time.Duration

	// SendQueue is how many bytes of frames may wait for a client of an
	// extended session (chat events). A client that falls further behind
	// is disconnected, so a stuck chat participant never slows the others.
	SendQueue int

	// SendTimeout drops a participant of an extended session whose socket
	// takes no bytes for this long.
	SendTimeout time.Duration

	// MaxSessionsPerHost is how many sessions one client address may hold
	// at once. Connections beyond it are reset at once, and logged.
	MaxSessionsPerHost int

	// MemoryBudget bounds, in bytes, what the server holds on behalf of
	// all its peers together: frames being read, output waiting to be
	// written, chat events queued or being sent. Past it, the sessions
	// holding the most are reset until the rest fits.
	MemoryBudget int64

	// MinRate is the fewest bytes per second a frame under way must bring,
	// measured over windows of MinRateWindow; a slower session is reset.
	// Negative: no minimum.
	MinRate       int
	MinRateWindow time.Duration

	// PingInterval is how often chat participants are pinged; one that
	// sends nothing, not even the answer, for two intervals is dropped.
	PingInterval time.Duration

	// TLS, when set, lets clients open sessions over TLS on the same port:
	// a session whose first byte starts a TLS handshake record (0x16) runs
	// the handshake with this configuration (trust.ServerConfig), within
	// HeaderTimeout of that byte, and then the same framing and extension
	// inside TLS. Every other limit applies to TLS sessions as to plain
	// ones. Nil: plain sessions only, read exactly as before.
	TLS *tls.Config

	// TLSOnly refuses plain sessions: a session that does not start with a
	// TLS handshake is reset, and logged at most once a second. It needs
	// TLS.
	TLSOnly bool

	// Web, when set, serves HTTP on the same port (the chat page): a
	// connection whose first byte is an upper-case letter (an HTTP method)
	// is handed to it, and holds its session slot until closed. TLSOnly
	// refuses such connections like other plain ones. Nil: no HTTP.
	Web WebServer

	// ChatNames, when set, records which client key owns which chat name
	// (chat_names in the server's config dir): a name once used by a key
	// belongs to it, and another key, or a plain session, asking for it
	// or a look-alike is given another. Nil: names are unique in the room
	// only.
	ChatNames *trust.NameOwners

	// Bus, when set, carries the rooms: each room's messages are stored
	// in it (history) and relayed to the room's members through one
	// subscription per room; direct messages wait in it. Nil: rooms live
	// in memory only, with no history and no direct messages.
	Bus *rooms.Bus

	// History is how many of a room's last messages a participant joining
	// it is shown (with a Bus). Negative: none.
	History int

	// MaxRooms bounds the rooms the server keeps (each is a subscription
	// and, with a Bus, a stream): a hello or !JOIN naming a new room past
	// it is refused.
	MaxRooms int
}

func (c Config) withDefaults() Config {
	if c.MaxPayload == 0 {
		c.MaxPayload = transport.DefaultMaxPayload
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.MaxSessionsPerHost == 0 {
		c.MaxSessionsPerHost = DefaultMaxSessionsPerHost
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = max(DefaultMemoryBudget, c.minMemoryBudget())
	}
	if c.MinRate == 0 {
		c.MinRate = DefaultMinRate
	}
	if c.MinRateWindow == 0 {
		c.MinRateWindow = DefaultMinRateWindow
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.MaxRooms == 0 {
		c.MaxRooms = DefaultMaxRooms
	}
	return c
}

// minMemoryBudget is the least budget that holds what one busy session may:
// its largest message at every stage (read, formatted for the output at six
// bytes per byte at worst, in JSON, and as a chat event in base64), a batch
// being filled, and the output it has handed over and not yet seen written.
func (c Config) minMemoryBudget() int64 {
	p := c.MaxPayload
	if p == 0 {
		p = transport.DefaultMaxPayload
	}
	return int64(p)*10 + maxInflight + 1<<20
}

// Validate reports every limit that is out of range.
func (c Config) Validate() error {
	var errs []error
	if c.MaxPayload != 0 && (c.MaxPayload < len(transport.Disconnect) || c.MaxPayload > transport.MaxPayloadLimit) {
		errs = append(errs, fmt.Errorf("max payload %d is out of range (%d bytes, the length of %s, to %d)",
			c.MaxPayload, len(transport.Disconnect), transport.Disconnect, transport.MaxPayloadLimit))
	}
	if c.SendQueue < 0 {
		errs = append(errs, fmt.Errorf("send queue %d is negative", c.SendQueue))
	}
	if c.MaxRooms < 0 {
		errs = append(errs, fmt.Errorf("max rooms %d is negative", c.MaxRooms))
	}
	if c.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("max sessions %d is negative", c.MaxSessions))
	}
	if c.MaxSessionsPerHost < 0 {
		errs = append(errs, fmt.Errorf("max sessions per host %d is negative", c.MaxSessionsPerHost))
	}
	if c.MemoryBudget < 0 {
		errs = append(errs, fmt.Errorf("memory budget %d is negative", c.MemoryBudget))
	}
	if least := c.minMemoryBudget(); c.MemoryBudget > 0 && c.MemoryBudget < least {
		errs = append(errs, fmt.Errorf("memory budget %d is under %d bytes (%d MiB), what one session may need for a message of the largest size", c.MemoryBudget, least, least>>20))
	}
	if c.MinRateWindow != 0 && (c.MinRateWindow < MinMinRateWindow || c.MinRateWindow > MaxMinRateWindow) {
		errs = append(errs, fmt.Errorf("min rate window %v is out of range (%v to %v)", c.MinRateWindow, MinMinRateWindow, MaxMinRateWindow))
	}
	if c.MinRate > MaxMinRate {
		errs = append(errs, fmt.Errorf("min rate %d bytes a second is over %d", c.MinRate, MaxMinRate))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle timeout", c.IdleTimeout}, {"header timeout", c.HeaderTimeout}, {"read timeout", c.ReadTimeout},
		{"send timeout", c.SendTimeout}, {"ping interval", c.PingInterval}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if c.TLSOnly && c.TLS == nil {
		errs = append(errs, errors.New("TLS only, but no TLS configuration"))
	}
	return errors.Join(errs...)
}
