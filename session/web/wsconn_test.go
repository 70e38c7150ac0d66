package web

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"

	"github.com/lanmsg/lanmsg/transport"
)

// wsPair returns the server side of a WebSocket as a wsConn, and the client
// side.
func wsPair(t *testing.T) (*wsConn, *websocket.Conn) {
	t.Helper()
	got := make(chan *wsConn, 1)
	hold := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ws.SetReadLimit(16 << 20)
		got <- newWSConn(ws, &net.TCPAddr{}, &net.TCPAddr{})
		<-hold
	}))
	t.Cleanup(func() { close(hold); ts.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return <-got, c
}

// Frames written in pieces cut anywhere (the session's writer cuts at
// 256 KiB, headers included) reach the page as one message each, whole.
func TestWSConnWriteFramesCutAnywhere(t *testing.T) {
	w, c := wsPair(t)
	payloads := []string{"a", "", strings.Repeat("x", 300<<10), `{"t":"msg","text":"hé"}`, strings.Repeat("y", 70)}
	var stream []byte
	for _, p := range payloads {
		stream = transport.AppendFrame(stream, []byte(p))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	go func() {
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rnd.IntN(100<<10))
			if rnd.IntN(4) == 0 {
				n = min(len(rest), 1+rnd.IntN(70)) // inside a header
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, want := range payloads {
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != websocket.MessageText || string(got) != want {
			t.Fatalf("message %d: %v of %d bytes, want text of %d", i, typ, len(got), len(want))
		}
	}
}

// Each message from the page reads as one frame, whatever the reads' sizes.
func TestWSConnReadMakesFrames(t *testing.T) {
	w, c := wsPair(t)
	payloads := []string{"!HELLO {}", "", strings.Repeat("z", 5000)}
	go func() {
		for _, p := range payloads {
			_ = c.Write(context.Background(), websocket.MessageText, []byte(p))
		}
	}()
	r := transport.NewReader(iotest.HalfReader(w), 1<<20)
	for i, want := range payloads {
		got, err := r.ReadFrame()
		if err != nil || string(got) != want {
			t.Fatalf("frame %d: %d bytes, %v; want %d", i, len(got), err, len(want))
		}
	}
}
