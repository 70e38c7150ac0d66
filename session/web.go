package session

import (
	"net"
	"sync"
	"time"
)

// The chat page on the server's port (PROTOCOL.md, "The chat page"). The
// server only tells HTTP apart by its first byte and keeps each HTTP
// connection registered as a session while it lives, so that the session
// limits count it; what is served over it is the WebServer's business
// (package session/web). A page's WebSocket comes back through
// ServeWebSocket as an ordinary extended session, marked as web.

// WebServer serves the HTTP connections a Server hands over.
type WebServer interface {
	// ServeConn serves an HTTP connection whose first bytes are still to
	// be read from nc. It must not block for long: the connection is
	// served elsewhere, and closed when done.
	ServeConn(nc net.Conn)
}

// WebSuffix marks the chat name of a participant on the chat page: the
// server appends it to the name it gives, and no other participant's name
// ends with it.
const WebSuffix = " (web)"

// reasonHTTP ends the session slot an HTTP connection held.
const reasonHTTP = "HTTP connection closed"

// isHTTPStart reports whether b can start an HTTP request: an HTTP method
// is an upper-case token (GET, HEAD, ...). A tutorial header starts with a
// digit or a space, a TLS handshake with 0x16.
func isHTTPStart(b byte) bool { return b >= 'A' && b <= 'Z' }

// httpConn is an HTTP connection handed to the WebServer: its close, by
// net/http or by a WebSocket that took it over, ends the session slot.
type httpConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (h *httpConn) Close() error {
	err := h.Conn.Close()
	h.once.Do(func() { close(h.closed) })
	return err
}

// serveHTTP hands an HTTP connection (its first byte already read, given
// back by pc) to the WebServer, and holds the session slot until it is
// closed.
func (c *conn) serveHTTP(pc net.Conn) {
	c.http.Store(true)
	if c.stopping.Load() {
		c.finish(reasonShutdown, nil, false)
		return
	}
	// net/http sets its own deadlines from here on.
	_ = c.nc.SetDeadline(time.Time{})
	hc := &httpConn{Conn: pc, closed: make(chan struct{})}
	c.srv.cfg.Web.ServeConn(hc)
	<-hc.closed
	active := c.srv.unregister(c)
	c.srv.end(c, active, reasonHTTP, nil)
}

// ServeWebSocket serves nc, a chat page's WebSocket made to look like a
// connection of the extension (package session/web), as a session of its
// own: the same limits apply to it as to any other (it counts for
// MaxSessions and, by nc's RemoteAddr, MaxSessionsPerHost). Its first
// frame must be a chat hello, and its name is marked with WebSuffix. It
// returns when the session has ended; when the server refuses it, nc is
// closed at once.
func (s *Server) ServeWebSocket(nc net.Conn) {
	if c := s.register(nc, true); c != nil {
		c.serve()
	}
}
