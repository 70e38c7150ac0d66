package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
func handshake(ctx context.Context, nc net.Conn, cfg ClientConfig) (*tls.Conn, error) {
	start := time.Now()
	wc := &watchConn{Conn: nc}
	deadline := start.Add(cfg.DialTimeout)
	if cfg.TLSProbe > 0 && cfg.TLSProbe < cfg.DialTimeout {
		wc.then = deadline
		deadline = start.Add(cfg.TLSProbe)
	}
	tc := tls.Client(wc, cfg.TLS)
	_ = nc.SetDeadline(deadline)
	err := tc.HandshakeContext(ctx)
	_ = nc.SetDeadline(time.Time{})
	if err == nil {
		return tc, nil
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
