package web

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/lanmsg/lanmsg/transport"
)

// wsConn makes a page's WebSocket look like a connection of the two-way
// extension, so that session.Server serves it as any other: each text
// message from the page becomes one frame (header and payload) to read,
// and each frame the server writes becomes one text message. Deadlines
// work as the session expects of a net.Conn, with one difference: when one
// passes during a read or write, the WebSocket is closed (coder/websocket
// cannot abandon an operation and go on). A session only meets a deadline
// between frames (a frame is read whole from memory), where it ends anyway.
type wsConn struct {
	ws     *websocket.Conn
	ctx    context.Context // the connection's lifetime
	cancel context.CancelFunc
	local  net.Addr
	remote net.Addr

	// Read side: only the session goroutine reads.
	rd deadline
	in []byte // frame bytes not yet read

	// Write side: the session's writer goroutine.
	wmu sync.Mutex
	wd  deadline
	out []byte // the start of a frame not yet complete

	closeOnce sync.Once
	closed    chan struct{}
}

func newWSConn(ws *websocket.Conn, local, remote net.Addr) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsConn{ws: ws, ctx: ctx, cancel: cancel, local: local, remote: remote, closed: make(chan struct{})}
}

// Read gives the frames made of the page's messages.
func (w *wsConn) Read(p []byte) (int, error) {
	if len(w.in) == 0 {
		w.in = nil
		if err := w.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.in)
	w.in = w.in[n:]
	return n, nil
}

// Buffered reports the bytes of a message read from the page and not yet
// taken by the session: memory held on the page's behalf.
func (w *wsConn) Buffered() int { return cap(w.in) }

// next reads the page's next message and makes a frame of it.
func (w *wsConn) next() error {
	if w.rd.passed() {
		return os.ErrDeadlineExceeded
	}
	ctx, done := w.rd.begin(w.ctx)
	defer done()
	_, r, err := w.ws.Reader(ctx)
	if err != nil {
		return w.readErr(ctx, err)
	}
	buf := make([]byte, transport.HeaderSize, transport.HeaderSize+512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return w.readErr(ctx, err)
		}
	}
	h := transport.AppendHeader(nil, len(buf)-transport.HeaderSize)
	copy(buf, h)
	w.in = buf
	return nil
}

func (w *wsConn) readErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && w.ctx.Err() == nil:
		return os.ErrDeadlineExceeded
	case w.ctx.Err() != nil:
		return net.ErrClosed
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return io.EOF
	}
	return err
}

// Write sends each whole frame in p as one text message; the start of a
// frame that p cuts is kept for the next Write.
func (w *wsConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.wd.passed() {
		return 0, os.ErrDeadlineExceeded
	}
	// One deadline for the whole write, however many frames it holds.
	ctx, done := w.wd.begin(w.ctx)
	defer done()
	buf := p
	if len(w.out) > 0 {
		w.out = append(w.out, p...)
		buf = w.out
	}
	for len(buf) >= transport.HeaderSize {
		size, err := transport.ParseHeader(buf[:transport.HeaderSize])
		if err != nil {
			return 0, err // the server's own frames: cannot happen
		}
		end := transport.HeaderSize + size
		if len(buf) < end {
			break
		}
		if err := w.send(ctx, buf[transport.HeaderSize:end]); err != nil {
			return 0, err
		}
		buf = buf[end:]
	}
	w.out = append(w.out[:0], buf...)
	if len(w.out) == 0 {
		w.out = nil
	}
	return len(p), nil
}

func (w *wsConn) send(ctx context.Context, payload []byte) error {
	err := w.ws.Write(ctx, websocket.MessageText, payload)
	if err != nil && ctx.Err() != nil && w.ctx.Err() == nil {
		return os.ErrDeadlineExceeded
	}
	return err
}

// Close ends the WebSocket with a normal closure.
func (w *wsConn) Close() error {
	w.closeOnce.Do(func() {
		w.cancel()
		close(w.closed)
		// The closing handshake waits for the page's answer (up to 5 s):
		// not on the session's time.
		go func() { _ = w.ws.Close(websocket.StatusNormalClosure, "") }()
	})
	return nil
}

func (w *wsConn) LocalAddr() net.Addr  { return w.local }
func (w *wsConn) RemoteAddr() net.Addr { return w.remote }

func (w *wsConn) SetDeadline(t time.Time) error {
	w.rd.set(t)
	w.wd.set(t)
	return nil
}
func (w *wsConn) SetReadDeadline(t time.Time) error  { w.rd.set(t); return nil }
func (w *wsConn) SetWriteDeadline(t time.Time) error { w.wd.set(t); return nil }

// deadline is one direction's deadline: it cancels the operation in
// flight when it passes, even when set during the operation.
type deadline struct {
	mu     sync.Mutex
	at     time.Time
	cancel context.CancelFunc // of the operation in flight
	timer  *time.Timer
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if d.cancel != nil {
		d.armLocked()
	}
}

func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.at.IsZero() && !time.Now().Before(d.at)
}

func (d *deadline) armLocked() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.at.IsZero() {
		return
	}
	wait := time.Until(d.at)
	if wait <= 0 {
		d.cancel()
		return
	}
	d.timer = time.AfterFunc(wait, d.cancel)
}

// begin starts an operation: its context ends when the deadline passes.
func (d *deadline) begin(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	d.mu.Lock()
	d.cancel = cancel
	d.armLocked()
	d.mu.Unlock()
	return ctx, func() {
		d.mu.Lock()
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
		d.cancel = nil
		d.mu.Unlock()
		cancel()
	}
}
