package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/session/trust"
)

// ErrNoTLS is wrapped by Dial's error when a TLS handshake failed and the
// server answered nothing that TLS sends (no handshake record, no alert):
// it does not speak TLS, like the tutorial's server. It is the one failure
// after which a client may try the plain protocol instead; a server that
// answered in TLS and failed the handshake (a key that does not match, a
// client it does not allow) must not be retried in clear.
var ErrNoTLS = errors.New("the server does not speak TLS")

// handshake runs the client's TLS handshake over nc within the dial timeout.
func handshake(ctx context.Context, nc net.Conn, cfg ClientConfig) (*tlsConn, error) {
	start := time.Now()
	wc := &watchConn{Conn: nc}
	deadline := start.Add(cfg.DialTimeout)
	if cfg.TLSProbe > 0 && cfg.TLSProbe < cfg.DialTimeout {
		wc.then = deadline
		deadline = start.Add(cfg.TLSProbe)
	}
	cc := &corkConn{Conn: wc}
	tc := tls.Client(cc, cfg.TLS)
	_ = nc.SetDeadline(deadline)
	err := tc.HandshakeContext(ctx)
	_ = nc.SetDeadline(time.Time{})
	if err == nil {
		return &tlsConn{Conn: tc, cork: cc}, nil
	}
	if !wc.got || !trust.IsTLSRecord(wc.first) && wc.first != recordAlert {
		return nil, fmt.Errorf("%w (%w)", ErrNoTLS, err)
	}
	return nil, err
}

// recordAlert is the TLS record type of an alert, what a TLS server that
// refuses the handshake sends.
const recordAlert = 0x15

// watchConn notes the first byte the server sends, and then moves the
// deadline from the probe's end to then, if set.
type watchConn struct {
	net.Conn
	got   bool
	first byte
	then  time.Time
}

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 && !w.got {
		w.got, w.first = true, p[0]
		if !w.then.IsZero() {
			_ = w.SetDeadline(w.then)
		}
	}
	return n, err
}

// tlsConn is the client's TLS connection. A Write sends its records in one
// write to the TCP connection, instead of one each: the client writes its
// frames 64 KiB at a time, which TLS cuts into records of 16 KiB.
type tlsConn struct {
	*tls.Conn
	cork *corkConn
}

func (t *tlsConn) Write(p []byte) (int, error) {
	_ = t.cork.setCorked(true) // corking sends nothing: no error
	n, err := t.Conn.Write(p)
	if ferr := t.cork.setCorked(false); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// corkSize bounds what a corkConn gathers: a client's flush (64 KiB) and
// the records' overhead.
const corkSize = 80 << 10

// corkConn is the TCP connection under TLS. While corked, it gathers what
// TLS writes (whole records, in order) and sends it when uncorked; writes
// from another goroutine (a pong) meanwhile join the gathered records.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked || len(c.buf)+len(p) > corkSize {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if !c.corked || len(p) > corkSize {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// setCorked corks or uncorks the connection; uncorking sends what was
// gathered, and returns the error of that write.
func (c *corkConn) setCorked(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = on
	if on {
		return nil
	}
	return c.flush()
}

func (c *corkConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
