package session

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lanmsg/lanmsg/transport"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

// Client defaults.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultConfirmTimeout = 10 * time.Second
)

// Client errors; the Client's errors wrap them.
var (
	// ErrNotConfirmed: the connection ended, or the server went silent,
	// before the server confirmed the session by closing it after
	// "!DISCONNECT". Some or all messages may not have been delivered.
	ErrNotConfirmed = errors.New("delivery not confirmed")

	// ErrClientClosed: Send or Close after Close.
	ErrClientClosed = errors.New("session: client closed")

	// ErrNoExtension: the server did not answer a hello: it speaks only the
	// plain protocol (or is not a lanmsg server).
	ErrNoExtension = errors.New("the server did not answer !HELLO: it does not support receipts or chat")

	// ErrOversizeEvent: the server sent a frame larger than any lanmsg
	// server sends (MaxEventSize of the client's MaxPayload). The session
	// ends before any of it is buffered.
	ErrOversizeEvent = errors.New("the server sent a frame larger than a lanmsg server sends")
)

// ClientConfig holds a client's limits. Zero values mean the defaults.
type ClientConfig struct {
	MaxPayload     int           // largest message it will send
	DialTimeout    time.Duration // to connect
	WriteTimeout   time.Duration // for each batch of frames to be taken by the server
	ConfirmTimeout time.Duration // for the server to close after "!DISCONNECT"

	// Hello, when set, opens an extended session (see Hello): the server
	// then confirms messages one batch at a time (Acked), and a chat
	// session receives the room's events. Send it only to servers that
	// advertise the extension: a plain server takes it for a message.
	Hello *Hello
	// OnEvent receives an extended session's events other than receipts
	// and pings (in a chat session the welcome; chat messages, joins,
	// leaves, who, history, direct messages, errors), in order, from the
	// client's reader goroutine.
	OnEvent func(Event)

	// TLS, when set, runs the session over TLS (trust.ClientConfig): the
	// handshake must be done within DialTimeout. A server that answers
	// with no TLS at all fails Dial with an error wrapping ErrNoTLS.
	TLS *tls.Config
	// TLSProbe, when set with TLS, is how long the server has to send its
	// first byte of the handshake: a server that sends nothing by then is
	// taken for one that does not speak TLS (ErrNoTLS). Once it answers,
	// the handshake has the rest of DialTimeout.
	TLSProbe time.Duration
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxPayload <= 0 {
		c.MaxPayload = transport.DefaultMaxPayload
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	return c
}

// maxTrustedPayload is the largest --max-payload a server may announce in
// its welcome for the client to accept its events; past it, the client's
// own MaxPayload is the bound.
const maxTrustedPayload = 16 << 20

// Client is the sending side of a session.
type Client struct {
	cfg     ClientConfig
	nc      net.Conn  // what frames go over: the TCP connection, or TLS over it
	raw     net.Conn  // the TCP connection, closed to interrupt
	tls     *tls.Conn // nil in a plain session
	w       *transport.Writer
	sent    int // messages handed to Send
	closed  bool
	scratch []byte

	// Extended sessions only.
	ext     bool
	welcome Event
	acked   atomic.Int64
	ponging atomic.Bool
	pongMu  sync.Mutex    // a pong never follows !DISCONNECT, or the server's close would be a reset
	closing bool          // under pongMu: !DISCONNECT is being sent
	done    chan struct{} // closed when the reader goroutine ends
	readErr error         // why it ended; read after done
}

// Dial connects to addr (host:port) over TCP within the dial timeout.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("session: connect to %s: %w", addr, err)
	}
	var tc *tlsConn
	if cfg.TLS != nil {
		if tc, err = handshake(ctx, nc, cfg); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("session: TLS with %s: %w", addr, err)
		}
	}
	var c *Client
	if tc != nil {
		c = NewClient(tc, cfg)
		c.raw, c.tls = nc, tc.Conn
	} else {
		c = NewClient(nc, cfg)
	}
	if cfg.Hello != nil {
		if err := c.hello(); err != nil {
			_ = nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// hello opens the extended session: it sends the hello, starts reading the
// server's events and waits for the welcome.
func (c *Client) hello() error {
	h := *c.cfg.Hello
	h.V = ProtocolVersion
	if err := c.w.WriteFrame(encodeHello(h)); err != nil {
		return c.writeErr(err)
	}
	c.ext = true
	c.done = make(chan struct{})
	welcomed := make(chan Event, 1)
	go c.read(welcomed)
	t := time.NewTimer(c.cfg.ConfirmTimeout)
	defer t.Stop()
	select {
	case ev := <-welcomed:
		c.welcome = ev
		return nil
	case <-c.done:
		// The welcome may have come just before the end: the hello was
		// answered, and the end is for the caller to find (Done, Err).
		select {
		case ev := <-welcomed:
			c.welcome = ev
			return nil
		default:
		}
		return fmt.Errorf("%w (%w)", ErrNoExtension, c.confirmErr(c.readErr))
	case <-t.C:
		return fmt.Errorf("%w within %v", ErrNoExtension, c.cfg.ConfirmTimeout)
	}
}

// read reads the server's events until the connection ends.
func (c *Client) read(welcomed chan<- Event) {
	defer close(c.done)
	// A lanmsg server sends no event larger than MaxEventSize of the
	// payload limit: a larger frame ends the session before any of it is
	// buffered, so a hostile server cannot make the client's memory grow.
	limit := MaxEventSize(c.cfg.MaxPayload)
	fr := transport.NewReader(c.nc, limit)
	var members map[string]bool // the chat's participants, to announce each join once
	welcomes := 0
	for {
		p, err := fr.ReadFrame()
		if err != nil {
			var pe *transport.ProtocolError
			if errors.As(err, &pe) && errors.Is(err, transport.ErrFrameTooLarge) {
				err = fmt.Errorf("%w: %d bytes, where a lanmsg server sends at most %d to a client whose --max-payload is %d (%w)",
					ErrOversizeEvent, pe.Length, limit, c.cfg.MaxPayload, transport.ErrFrameTooLarge)
			}
			c.readErr = err
			return
		}
		var ev Event
		if json.Unmarshal(p, &ev) != nil {
			continue // not for us; the extension only ever sends JSON objects
		}
		if ev.Data != nil {
			ev.Text, ev.Data = string(ev.Data), nil
		}
		switch ev.Type {
		case EventWelcome:
			// A server that accepts larger messages than this client
			// sends may relay them: accept its events, up to a ceiling.
			if m := min(ev.Max, maxTrustedPayload); m > c.cfg.MaxPayload {
				limit = MaxEventSize(m)
				fr.SetMax(limit)
			}
			members = make(map[string]bool, len(ev.Names))
			for _, n := range ev.Names {
				members[n] = true
			}
			// The first welcome answers the hello; later ones answer a
			// !JOIN. In a chat session each goes to OnEvent too, before
			// the history that follows it.
			if c.cfg.OnEvent != nil && c.cfg.Hello.Chat {
				c.cfg.OnEvent(ev)
			}
			if welcomes++; welcomes == 1 {
				welcomed <- ev
			}
		case EventAck:
			c.acked.Store(ev.N)
		case EventPing:
			c.pong()
		default:
			if ev.Type == EventJoin || ev.Type == EventLeave {
				if ev = presence(ev, members); ev.Name == "" && len(ev.Names) == 0 {
					continue // only about people already announced (or us)
				}
			}
			if c.cfg.OnEvent != nil {
				c.cfg.OnEvent(ev)
			}
		}
	}
}

// presence keeps, of a join or leave event, the names that change the set
// of members known: the server announces joins in batches, which may name
// people (this client included) already listed in its welcome.
func presence(ev Event, members map[string]bool) Event {
	if members == nil {
		return ev
	}
	join := ev.Type == EventJoin
	var kept []string
	for _, n := range append(ev.Names, ev.Name) {
		if n == "" || members[n] == join {
			continue
		}
		if join {
			members[n] = true
		} else {
			delete(members, n)
		}
		kept = append(kept, n)
	}
	ev.Name, ev.Names = "", nil
	if len(kept) == 1 && ev.More == 0 {
		ev.Name = kept[0]
	} else {
		ev.Names = kept
	}
	return ev
}

// pong answers the server's ping, from its own goroutine so that a server
// that does not read never blocks the reader; one at a time.
func (c *Client) pong() {
	if !c.ponging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.ponging.Store(false)
		c.pongMu.Lock()
		defer c.pongMu.Unlock()
		if !c.closing {
			_ = c.w.WriteFrame([]byte(pongFrame))
		}
	}()
}

// Extended reports whether this is an extended session.
func (c *Client) Extended() bool { return c.ext }

// Welcome is the server's answer to the hello: the chat name given and the
// participants.
func (c *Client) Welcome() Event { return c.welcome }

// Acked reports how many messages the server has confirmed writing to its
// output: the first Acked messages sent are delivered. Only extended
// sessions have receipts.
func (c *Client) Acked() int64 { return c.acked.Load() }

// Err reports why an extended session's connection ended, once Done is
// closed; nil before that.
func (c *Client) Err() error {
	if c.done == nil {
		return nil
	}
	select {
	case <-c.done:
		return c.endErr()
	default:
		return nil
	}
}

// Done is closed when an extended session's connection has ended; nil for a
// plain session.
func (c *Client) Done() <-chan struct{} { return c.done }

// Who asks the server for the chat's participants; the answer comes as an
// EventWho.
func (c *Client) Who() error {
	if !c.ext {
		return errors.New("session: who needs an extended session")
	}
	return c.writeErr(c.w.WriteFrame([]byte(whoRequest)))
}

// Join moves a chat session to another room; a welcome event answers
// (version 3).
func (c *Client) Join(room string) error { return c.control(joinPrefix + room) }

// Rooms asks for the rooms and their member counts; an EventRooms answers.
func (c *Client) Rooms() error { return c.control(roomsRequest) }

// History asks for n more messages of the room before those shown; they
// come as messages marked History, then an EventHistory.
func (c *Client) History(n int) error { return c.control(historyPrefix + strconv.Itoa(n)) }

// DirectMessage sends a direct message; an EventDelivered or EventQueued
// with its ID answers, or an EventError.
func (c *Client) DirectMessage(dm DirectMessage) error {
	b, _ := json.Marshal(dm)
	return c.control(dmPrefix + string(b))
}

func (c *Client) control(frame string) error {
	if !c.ext {
		return errors.New("session: " + strings.ToLower(strings.TrimPrefix(strings.Fields(frame)[0], "!")) + " needs an extended session")
	}
	return c.writeErr(c.w.WriteFrame([]byte(frame)))
}

// NewClient returns a client on an established connection.
func NewClient(nc net.Conn, cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, nc: nc, raw: nc}
	// Send enforces the message limit; the writer's is only the
	// transport's guard, so that control frames (the hello, "!DISCONNECT")
	// and an escaped message one byte over the limit go through as they are.
	c.w = transport.NewWriter(deadlineWriter{nc, cfg.WriteTimeout}, transport.MaxPayloadLimit)
	return c
}

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// TLS returns the session's TLS state, and false in a plain session.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// Send queues msg as a frame. Frames go out in batches; Flush sends what is
// queued. A message longer than the maximum is refused with an error wrapping
// transport.ErrFrameTooLarge, and nothing of it is sent.
func (c *Client) Send(msg []byte) error {
	if c.closed {
		return ErrClientClosed
	}
	if len(msg) > c.cfg.MaxPayload {
		return &transport.ProtocolError{Err: transport.ErrFrameTooLarge, Length: len(msg), Max: c.cfg.MaxPayload}
	}
	if c.ext {
		msg = escapeBang(c.scratch, msg)
		if len(msg) > 0 && msg[0] == '!' {
			c.scratch = msg
		}
	} else if string(msg) == transport.Disconnect {
		return ErrReservedMessage
	} else if c.sent == 0 {
		if _, ok := parseHello(msg); ok {
			return ErrHelloMessage
		}
	}
	if err := c.w.Buffer(msg); err != nil {
		return c.writeErr(err)
	}
	c.sent++
	return nil
}

// Flush sends the queued frames.
func (c *Client) Flush() error {
	if c.closed {
		return ErrClientClosed
	}
	return c.writeErr(c.w.Flush())
}

// Sent reports how many messages were handed to Send.
func (c *Client) Sent() int { return c.sent }

// Close sends "!DISCONNECT" after the queued frames and waits for the server
// to close the connection. It returns nil only when the server closed it
// normally: every message was read. Otherwise the error wraps
// ErrNotConfirmed.
func (c *Client) Close() error {
	if c.closed {
		return ErrClientClosed
	}
	c.closed = true
	defer func() { _ = c.raw.Close() }()
	if c.ext {
		select {
		case <-c.done:
			// The server ended the session before our !DISCONNECT: that
			// is no confirmation, whatever the way it ended.
			return fmt.Errorf("%w: the server ended the session before !DISCONNECT (%w)", ErrNotConfirmed, c.endErr())
		default:
		}
	}
	c.pongMu.Lock()
	c.closing = true
	c.pongMu.Unlock()
	if err := c.w.WriteFrame([]byte(transport.Disconnect)); err != nil {
		return c.writeErr(err)
	}
	if c.ext {
		t := time.NewTimer(c.cfg.ConfirmTimeout)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			_ = c.raw.Close()
			<-c.done
			return c.confirmErr(os.ErrDeadlineExceeded)
		}
		if err := c.confirmErr(c.readErr); err != nil {
			return err
		}
		// A lanmsg server sends its last receipt before its close.
		if n := c.acked.Load(); n < int64(c.sent) {
			return fmt.Errorf("%w: the server closed the connection having confirmed %d of %d messages", ErrNotConfirmed, n, c.sent)
		}
		return nil
	}
	return c.awaitClose()
}

// Interrupt cuts the connection, so that a Send, Flush or Close blocked on
// the server returns at once with an error. Unlike the other methods, it may
// be called from any goroutine, at any time.
func (c *Client) Interrupt() { _ = c.raw.Close() }

// Abort closes the connection without "!DISCONNECT".
func (c *Client) Abort() error {
	c.closed = true
	err := c.raw.Close()
	if c.ext {
		<-c.done
	}
	return err
}

// awaitClose reads until the server closes the connection. The plain
// protocol has the server send nothing, so anything it does send is
// discarded.
func (c *Client) awaitClose() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.ConfirmTimeout))
	var buf [512]byte
	for {
		_, err := c.nc.Read(buf[:])
		if err != nil {
			return c.confirmErr(err)
		}
	}
}

// endErr is why the reader stopped, io.EOF spelled out.
func (c *Client) endErr() error {
	if errors.Is(c.readErr, io.EOF) {
		return errors.New("it closed the connection")
	}
	return c.readErr
}

// confirmErr interprets how the connection ended after "!DISCONNECT": an
// orderly close is the confirmation.
func (c *Client) confirmErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: the server did not close the connection within %v of !DISCONNECT (%w)", ErrNotConfirmed, c.cfg.ConfirmTimeout, os.ErrDeadlineExceeded)
	case neterr.Reset(err):
		return fmt.Errorf("%w: the server reset the connection (it may have refused the session, hit a limit, or be shutting down) (%w)", ErrNotConfirmed, unwrapSyscall(err))
	case errors.Is(err, transport.ErrTruncated):
		return fmt.Errorf("%w: the connection ended in the middle of a frame from the server (%w)", ErrNotConfirmed, err)
	default:
		return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
	}
}

// writeErr explains a failed write in terms of delivery.
func (c *Client) writeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, transport.ErrFrameTooLarge):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: the server stopped reading (nothing was taken for %v) (%w)", ErrNotConfirmed, c.cfg.WriteTimeout, os.ErrDeadlineExceeded)
	case neterr.Reset(err):
		c.awaitReader()
		return fmt.Errorf("%w: the server closed or reset the connection while messages were being sent (%w)", ErrNotConfirmed, unwrapSyscall(err))
	}
	return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
}

// awaitReader waits, in an extended session that the server has reset, for
// the reader to take the frames that arrived before the reset. The server
// sends its last receipt just before it resets; without the wait, a caller
// that reads Acked or closes the connection at once (Close and Abort do)
// would lose that receipt, and Acked would fall short of what was
// delivered.
func (c *Client) awaitReader() {
	if !c.ext {
		return
	}
	t := time.NewTimer(c.cfg.ConfirmTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

// deadlineWriter gives every write its own deadline, so a server that stops
// reading cannot block the client forever.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.nc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.nc.Write(p)
}

// MaxPayload is the largest message Send accepts.
func (c *Client) MaxPayload() int { return c.cfg.MaxPayload }

// unwrapSyscall returns the errno inside err, for a shorter message.
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
