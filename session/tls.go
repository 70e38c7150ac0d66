package session

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/lanmsg/lanmsg/session/trust"
)

// Reasons a session ended before its first frame, as logged.
const (
	reasonHandshake    = "TLS handshake failed"
	reasonPlainRefused = "plain session refused (--tls-only)"
	reasonNoFirstByte  = "nothing sent"
)

// tlsState is what a TLS session knows about its client once the handshake
// is done.
type tlsState struct {
	conn   *tls.Conn
	client trust.Fingerprint // the client certificate's key
	hasKey bool              // false: the client sent no certificate
}

// Client returns the client's key fingerprint and whether it sent one.
func (t *tlsState) Client() (trust.Fingerprint, bool) {
	if t == nil {
		return trust.Fingerprint{}, false
	}
	return t.client, t.hasKey
}

// negotiate tells, on a server with TLS or the chat page, a TLS session,
// an HTTP connection (an upper-case letter: a method) and the tutorial's
// protocol apart by the first byte the client sends: 0x16 starts a TLS
// handshake record, while a header is ASCII digits and spaces. An HTTP
// connection is handed to Config.Web (serveHTTP). A TLS session runs the
// handshake, bounded by the header timeout from that byte on, and then the
// same framing inside TLS. A plain session gets that byte back in front of
// its stream and goes on as if nothing had been read. It reports false when
// the session has ended (handshake failed, plain session refused, nothing
// sent).
//
// A server without TLS and without the page reads nothing here: its
// sessions are byte for byte what they were.
func (c *conn) negotiate() bool {
	cfg := &c.srv.cfg
	if c.web || cfg.TLS == nil && cfg.Web == nil {
		return true
	}
	// Until the first byte, the session is idle, with the idle timeout.
	if !c.setDeadline(time.Now().Add(cfg.IdleTimeout), false) {
		c.finish(reasonShutdown, nil, false)
		return false
	}
	var first [1]byte
	n, err := c.nc.Read(first[:])
	c.lastRead = time.Now()
	if n == 0 {
		if err == nil {
			err = errors.New("empty read")
		}
		reason, graceful := c.classify(err)
		if graceful {
			err = nil
			reason = reasonNoFirstByte
		}
		// An orderly close with nothing sent confirms nothing: there was
		// nothing to confirm, as in a plain server.
		c.finish(reason, err, graceful)
		return false
	}
	pc := &prefixConn{Conn: c.nc, first: first[:]}
	if !trust.IsTLSRecord(first[0]) || cfg.TLS == nil {
		if cfg.TLSOnly {
			c.srv.plainLog.note(c.srv.log, c.peer, 0, "connection refused: plain (unencrypted) session on a --tls-only server")
			c.finish(reasonPlainRefused, nil, false)
			return false
		}
		if cfg.Web != nil && isHTTPStart(first[0]) {
			c.serveHTTP(pc)
			return false
		}
		c.io = pc
		return true
	}
	// The handshake, however many round trips, must be done within the
	// header timeout of its first byte: a client that stalls in it holds
	// a session slot no longer than one that stalls in a header.
	if !c.setDeadline(c.lastRead.Add(cfg.HeaderTimeout), true) {
		c.finish(reasonShutdown, nil, false)
		return false
	}
	tc := tls.Server(pc, cfg.TLS)
	if err := serverHandshake(tc); err != nil {
		reason := reasonHandshake
		if c.stopping.Load() {
			reason = reasonShutdown
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			c.lingerAlert()
		}
		c.finish(reason, fmt.Errorf("TLS handshake: %w", err), false)
		return false
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	st := &tlsState{conn: tc}
	st.client, st.hasKey = trust.PeerFingerprint(tc.ConnectionState())
	c.io = tc
	c.tls = st
	c.tlsp.Store(st)
	ev := c.srv.log.Info().Uint64(FieldSession, c.id).Str(FieldPeer, c.peer)
	if st.hasKey {
		ev = ev.Str(FieldClientKey, st.client.String())
	}
	ev.Msg("TLS session")
	return true
}

// serverHandshake runs the server's handshake on a goroutine of its own, which
// ends with it: the handshake's deep stack (certificate parsing, signatures)
// then goes with that goroutine instead of staying with the session's, which
// an idle session keeps for hours.
func serverHandshake(tc *tls.Conn) error {
	done := make(chan error, 1)
	go func() { done <- tc.Handshake() }()
	return <-done
}

// refusalLingerRead bounds what a session whose handshake the server
// refused (serve --allow) reads after the alert.
const refusalLingerRead = 64 << 10

// lingerAlert lets the client read the alert of a refused handshake: in TLS
// 1.3 the client's handshake is over before the server checks its key, so
// the client writes before it reads, and a reset at once would destroy the
// alert that says why. The server stops sending (FIN) and reads, discarding,
// until the client closes, at most refusalLingerRead bytes and only until
// the handshake's deadline (--header-timeout from its first byte) passes;
// the reset that follows comes after the alert.
func (c *conn) lingerAlert() {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.CloseWrite()
	_, _ = io.CopyN(io.Discard, tc, refusalLingerRead)
}

// setDeadline sets the read deadline (and the write deadline too, if both)
// unless the server is shutting down; it reports false if it is.
func (c *conn) setDeadline(t time.Time, both bool) bool {
	if both {
		_ = c.nc.SetDeadline(t)
	} else {
		_ = c.nc.SetReadDeadline(t)
	}
	// Shutdown sets stopping before it moves the deadline into the past;
	// the deadline set above may have overwritten that.
	if c.stopping.Load() {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		return false
	}
	return true
}

// closeGracefully closes the session in the orderly way that confirms it:
// for TLS, a close_notify alert first (a TLS client takes a close without
// one for a truncation, never a confirmation), bounded by the read timeout
// in case the client does not read it.
func (c *conn) closeGracefully() {
	if c.tls != nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
		_ = c.tls.conn.Close()
		return
	}
	_ = c.nc.Close()
}

// prefixConn is a connection whose first bytes were already read: it gives
// them back before reading on.
type prefixConn struct {
	net.Conn
	first []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.first) > 0 && len(b) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
