package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/session/trust"
	"github.com/lanmsg/lanmsg/session/web"
	"github.com/lanmsg/lanmsg/transport"
)

// start runs a server with the chat page on 127.0.0.1.
func start(t *testing.T, cfg session.Config) (*session.Server, string, *sessiontest.SyncBuffer) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	page, err := web.New(&log, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Web = page
	out := &sessiontest.SyncBuffer{}
	srv, err := session.NewServer(cfg, out, session.Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	page.Start(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
		_ = page.Close()
	})
	return srv, ln.Addr().String(), out
}

// dial opens the page's WebSocket as a browser on the page would.
func dial(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+web.WSPath, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"http://" + addr}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

type event struct {
	T     string   `json:"t"`
	Name  string   `json:"name"`
	Names []string `json:"names"`
	Text  string   `json:"text"`
	N     int64    `json:"n"`
}

func send(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// next reads the next event but pings; err is the read's.
func next(ws *websocket.Conn) (event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, p, err := ws.Read(ctx)
		if err != nil {
			return event{}, err
		}
		var ev event
		if err := json.Unmarshal(p, &ev); err != nil {
			return event{}, err
		}
		if ev.T != "ping" {
			return ev, nil
		}
	}
}

func join(t *testing.T, addr, name string) (*websocket.Conn, event) {
	t.Helper()
	ws := dial(t, addr)
	send(t, ws, `!HELLO {"v":2,"name":"`+name+`","chat":true}`)
	ev, err := next(ws)
	if err != nil || ev.T != "welcome" {
		t.Fatalf("welcome: %+v, %v", ev, err)
	}
	return ws, ev
}

// waitClosed reads until the server ends the WebSocket.
func waitClosed(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	for {
		if _, err := next(ws); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the server did not close the WebSocket")
			}
			return err
		}
	}
}

func TestPageAndFramesOnOnePort(t *testing.T) {
	_, addr, out := start(t, session.Config{})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `name="text"`) {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != web.CSP || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// The tutorial's frames on the same port, from a header starting with
	// a digit and one starting with a space.
	for _, msg := range []string{"plain one", strings.Repeat("x", 100)} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		hdr := transport.AppendHeader(nil, len(msg))
		if len(msg) == 100 {
			hdr = append([]byte(" "+"100"), []byte(strings.Repeat(" ", 60))...)
		}
		_, _ = nc.Write(append(append(hdr, msg...), transport.AppendFrame(nil, []byte(transport.Disconnect))...))
		if _, err := io.ReadAll(nc); err != nil {
			t.Fatalf("session for %q not confirmed: %v", msg, err)
		}
		_ = nc.Close()
		if !strings.Contains(out.String(), " : "+msg+"\n") {
			t.Fatalf("output lacks %q:\n%s", msg, out.String())
		}
	}
}

func TestWebSessionMarkedAndChats(t *testing.T) {
	srv, addr, out := start(t, session.Config{})
	ann, welcome := join(t, addr, "ann")
	if welcome.Name != "ann (web)" {
		t.Errorf("name given %q, want %q", welcome.Name, "ann (web)")
	}
	ben, welcome := join(t, addr, "ben (WEB)") // only the server marks
	if welcome.Name != "ben (web)" {
		t.Errorf("name given %q, want %q", welcome.Name, "ben (web)")
	}
	send(t, ann, "!!bang and <b>")
	for {
		ev, err := next(ben)
		if err != nil {
			t.Fatal(err)
		}
		if ev.T == "msg" {
			if ev.Name != "ann (web)" || ev.Text != "!bang and <b>" {
				t.Errorf("ben got %+v", ev)
			}
			break
		}
	}
	// The receipt says the message is written to the server's output.
	for {
		ev, err := next(ann)
		if err != nil {
			t.Fatal(err)
		}
		if ev.T == "ack" && ev.N >= 1 {
			break
		}
	}
	if !strings.Contains(out.String(), " : !bang and <b>\n") {
		t.Errorf("server output:\n%s", out.String())
	}
	web := 0
	for _, s := range srv.Sessions() {
		if s.Web {
			web++
		}
	}
	if web != 2 {
		t.Errorf("%d web sessions, want 2", web)
	}
}

func TestWebNameOwnedByKey(t *testing.T) {
	owners, err := trust.NameOwnersIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var fp trust.Fingerprint
	fp[0] = 1
	if _, err := owners.Claim("alice", fp); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := start(t, session.Config{ChatNames: owners})
	// All stay in the room: each is also unique there.
	for i, ask := range []string{"alice", "ALICE", "аlice"} { // the last with a Cyrillic а
		_, welcome := join(t, addr, ask)
		if want := fmt.Sprintf("%s (%d) (web)", ask, i+2); welcome.Name != want {
			t.Errorf("asking for %q gave %q, want %q: the name is owned by a key", ask, welcome.Name, want)
		}
	}
}

func TestWebNeedsChatHello(t *testing.T) {
	_, addr, out := start(t, session.Config{})
	for _, first := range []string{"just text", `!HELLO {"v":2}`} {
		ws := dial(t, addr)
		send(t, ws, first)
		send(t, ws, "second")
		_ = waitClosed(t, ws)
	}
	if s := out.String(); strings.Contains(s, "text") || strings.Contains(s, "second") {
		t.Errorf("a page session without a chat hello wrote to the output:\n%s", s)
	}
}

func TestWebMessageSizeLimit(t *testing.T) {
	_, addr, out := start(t, session.Config{MaxPayload: 100})
	ws, _ := join(t, addr, "ann")
	send(t, ws, strings.Repeat("a", 100))
	send(t, ws, strings.Repeat("b", 101))
	err := waitClosed(t, ws)
	if !strings.Contains(out.String(), strings.Repeat("a", 100)) || strings.Contains(out.String(), "bbbb") {
		t.Errorf("output (closed with %v):\n%s", err, out.String())
	}
}

func TestWebPerHostLimit(t *testing.T) {
	// A page's WebSocket holds two slots: its HTTP connection and its
	// chat session.
	srv, addr, _ := start(t, session.Config{MaxSessionsPerHost: 3})
	join(t, addr, "ann")
	ws := dial(t, addr) // the third slot; its session would be the fourth
	send(t, ws, `!HELLO {"v":2,"name":"ben","chat":true}`)
	_ = waitClosed(t, ws)
	if n := srv.Hosts()["127.0.0.1"]; n > 3 {
		t.Errorf("127.0.0.1 holds %d sessions, over its limit of 3", n)
	}
}

func TestWebLiveness(t *testing.T) {
	// A page that stops answering pings is dropped like any chat client.
	_, addr, _ := start(t, session.Config{PingInterval: 100 * time.Millisecond})
	ws, _ := join(t, addr, "ann")
	start := time.Now()
	_ = waitClosed(t, ws) // never answers
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("dropped after %v, before two ping intervals", d)
	}
}

func TestWebCrossOriginRefused(t *testing.T) {
	srv, addr, _ := start(t, session.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+web.WSPath, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"http://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: %v (response %v), want 403", err, resp)
	}
	for _, s := range srv.Sessions() {
		if s.Web {
			t.Errorf("web session opened: %+v", s)
		}
	}
}
