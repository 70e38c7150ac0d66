package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/lanmsg/lanmsg/transport"
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
)

// ClientConfig holds a client's limits. Zero values mean the defaults.
type ClientConfig struct {
	MaxPayload     int           // largest message it will send
	DialTimeout    time.Duration // to connect
	WriteTimeout   time.Duration // for each batch of frames to be taken by the server
	ConfirmTimeout time.Duration // for the server to close after "!DISCONNECT"
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

// Client is the sending side of a session.
type Client struct {
	cfg    ClientConfig
	nc     net.Conn
	w      *transport.Writer
	sent   int // messages handed to Send
	closed bool
}

// Dial connects to addr (host:port) over TCP within the dial timeout.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("session: connect to %s: %w", addr, err)
	}
	return NewClient(nc, cfg), nil
}

// NewClient returns a client on an established connection.
func NewClient(nc net.Conn, cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, nc: nc}
	// The writer's own limit lets "!DISCONNECT" through even when the
	// payload limit is set lower; Send enforces the payload limit.
	c.w = transport.NewWriter(deadlineWriter{nc, cfg.WriteTimeout}, max(cfg.MaxPayload, len(transport.Disconnect)))
	return c
}

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

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
	defer c.nc.Close()
	if err := c.w.WriteFrame([]byte(transport.Disconnect)); err != nil {
		return c.writeErr(err)
	}
	return c.awaitClose()
}

// Abort closes the connection without "!DISCONNECT".
func (c *Client) Abort() error {
	c.closed = true
	return c.nc.Close()
}

// awaitClose reads until the server closes the connection. The plain
// protocol has the server send nothing, so anything it does send is
// discarded.
func (c *Client) awaitClose() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.ConfirmTimeout))
	var buf [512]byte
	for {
		_, err := c.nc.Read(buf[:])
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("%w: the server did not close the connection within %v of !DISCONNECT (%w)", ErrNotConfirmed, c.cfg.ConfirmTimeout, os.ErrDeadlineExceeded)
		case errors.Is(err, syscall.ECONNRESET):
			return fmt.Errorf("%w: the server reset the connection (it may have refused the session, hit a limit, or be shutting down) (%w)", ErrNotConfirmed, syscall.ECONNRESET)
		default:
			return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
		}
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
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%w: the server closed or reset the connection while messages were being sent (%w)", ErrNotConfirmed, unwrapSyscall(err))
	}
	return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
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
