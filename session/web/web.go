// Package web serves lanmsg's chat page on the server's own port: the
// page itself (plain HTML, CSS and JavaScript embedded in the binary) and,
// at /ws, a WebSocket that carries the two-way extension's frames, one
// text message each. session.Server hands it the connections that start
// with HTTP, and serves each page's WebSocket as an ordinary chat session
// marked as web (session.Server.ServeWebSocket), so every limit of the
// server applies to it. PROTOCOL.md ("The chat page") specifies it.
package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
)

//go:embed static
var static embed.FS

// Path is where the page is served; WSPath its WebSocket.
const (
	Path   = "/"
	WSPath = "/ws"
)

// CSP is the Content-Security-Policy of every response: scripts, styles
// and connections from the page's own origin only, no inline script or
// style, nothing from anywhere else, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// idleTimeout closes a keep-alive connection with no request for this
// long: it holds a session slot meanwhile.
const idleTimeout = 30 * time.Second

// Sessions is what the page needs of session.Server.
type Sessions interface {
	ServeWebSocket(nc net.Conn)
	Config() session.Config
}

// Server serves the page on the connections handed to it (ServeConn).
type Server struct {
	log *zerolog.Logger
	ln  *connListener
	hs  *http.Server

	index []byte // the page, its room field filled in

	mu       sync.Mutex
	sessions Sessions
}

// Options configures the page.
type Options struct {
	// Room is the room field's default: the room `lanmsg chat` joins.
	Room string
}

// New returns a page server; Start gives it the sessions to serve.
func New(log *zerolog.Logger, opts Options) (*Server, error) {
	t, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: page template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, opts); err != nil {
		return nil, fmt.Errorf("web: page template: %w", err)
	}
	return &Server{log: log, ln: newConnListener(), index: b.Bytes()}, nil
}

// ServeConn implements session.WebServer.
func (w *Server) ServeConn(nc net.Conn) { w.ln.put(nc) }

// Start serves the page, its WebSocket sessions served by s, until Close.
func (w *Server) Start(s Sessions) {
	cfg := s.Config()
	w.mu.Lock()
	w.sessions = s
	w.mu.Unlock()
	sub, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET "+WSPath, http.HandlerFunc(w.serveWS))
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = rw.Write(w.index)
	})
	w.hs = &http.Server{
		Handler:           headers(mux),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.SendTimeout,
		IdleTimeout:       min(idleTimeout, cfg.IdleTimeout),
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(httpLog{w.log}, "", 0),
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, nc)
		},
	}
	go func() { _ = w.hs.Serve(w.ln) }()
}

// Close stops serving: the connections handed over and not yet served are
// closed, as are those being served.
func (w *Server) Close() error {
	err := w.ln.Close()
	if w.hs != nil {
		_ = w.hs.Close()
	}
	return err
}

// headers sets the security headers of every response.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(rw, r)
	})
}

// serveWS accepts a page's WebSocket and serves it as a chat session. The
// Origin must match the Host (coder/websocket's check): another site's
// page cannot open it in its visitor's browser.
func (w *Server) serveWS(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	s := w.sessions
	w.mu.Unlock()
	ws, err := websocket.Accept(rw, r, nil)
	if err != nil {
		w.log.Warn().Err(err).Str("peer", r.RemoteAddr).Str("origin", r.Header.Get("Origin")).Msg("chat page: WebSocket refused")
		return
	}
	if nc, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		// net/http's deadlines stay on the connection it gave up: the
		// session sets its own from here on.
		_ = nc.SetDeadline(time.Time{})
	}
	ws.SetReadLimit(int64(s.Config().MaxPayload))
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	var remote net.Addr = &net.TCPAddr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = net.TCPAddrFromAddrPort(ap)
	}
	wc := newWSConn(ws, local, remote)
	s.ServeWebSocket(wc)
	_ = wc.Close()
}

// connKey keys the connection a request came on in its context.
type connKey struct{}

// httpLog passes net/http's own error log (bad requests, TLS probes...)
// to the debug log.
type httpLog struct{ log *zerolog.Logger }

func (h httpLog) Write(p []byte) (int, error) {
	h.log.Debug().Str("from", "net/http").Msg(string(p))
	return len(p), nil
}

// connListener is a net.Listener whose connections are handed in by
// ServeConn.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) put(nc net.Conn) {
	select {
	case l.ch <- nc:
	case <-l.done:
		_ = nc.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.ch:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return pageAddr{} }

type pageAddr struct{}

func (pageAddr) Network() string { return "lanmsg" }
func (pageAddr) String() string  { return "chat page" }
