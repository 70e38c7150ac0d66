package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// Defaults for Config. Each is a flag of `lanmsg serve`.
const (
	DefaultMaxSessions   = 1024
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultHeaderTimeout = 10 * time.Second
	DefaultReadTimeout   = 30 * time.Second
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
	return c
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
	if c.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("max sessions %d is negative", c.MaxSessions))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle timeout", c.IdleTimeout}, {"header timeout", c.HeaderTimeout}, {"read timeout", c.ReadTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}
