package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/lanmsg/lanmsg/session"
)

func init() {
	register("webroom", "one room of N chat page (WebSocket) participants side by side with N chat (TCP) participants: messages/s delivered and server RSS per participant", runWebRoom)
}

// webRoomConfig is what a webroom run measures.
type webRoomConfig struct {
	bin   string
	n     int // listeners
	msgs  int // messages the sender sends
	size  int // bytes each
	runs  int
	dir   string
	limit time.Duration
}

func runWebRoom(args []string) error {
	fs := flag.NewFlagSet("webroom", flag.ContinueOnError)
	c := webRoomConfig{}
	fs.StringVar(&c.bin, "bin", "bin/lanmsg", "the lanmsg binary")
	fs.IntVar(&c.n, "n", 200, "participants listening in the room")
	fs.IntVar(&c.msgs, "msgs", 2000, "messages one more participant sends")
	fs.IntVar(&c.size, "size", 32, "bytes per message")
	fs.IntVar(&c.runs, "runs", 3, "runs of each kind (the best is reported)")
	fs.DurationVar(&c.limit, "timeout", 2*time.Minute, "give up on a run after this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseNofile()
	dir, err := os.MkdirTemp("", "lanmsg-webroom")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c.dir = dir

	fmt.Printf("one room: %d listening participants, 1 sender, %d messages of %d bytes; lanmsg serve on loopback, clients in this process\n\n",
		c.n, c.msgs, c.size)
	fmt.Println("| participants | deliveries/s (best of runs) | server RSS per participant | ratio to chat |")
	fmt.Println("| --- | --- | --- | --- |")
	var ref webRoomResult
	for _, kind := range []string{"chat", "web"} {
		best := webRoomResult{}
		for range c.runs {
			r, err := c.run(kind)
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			if r.rate > best.rate {
				best.rate = r.rate
			}
			if best.rss == 0 || r.rss < best.rss {
				best.rss = r.rss
			}
		}
		if kind == "chat" {
			ref = best
		}
		fmt.Printf("| %d %s | %s | %.1f KiB | %.2f× the rate, %.2f× the RSS |\n", c.n, kind, si(best.rate), best.rss/1024, best.rate/ref.rate, best.rss/ref.rss)
	}
	return nil
}

type webRoomResult struct {
	rate float64 // messages delivered per second, all listeners together
	rss  float64 // bytes of server RSS per participant
}

// participant is one member of the room, of either kind.
type participant interface {
	send(text string) error
	flush() error
	close()
}

func (c *webRoomConfig) run(kind string) (webRoomResult, error) {
	srv, err := startServer(c.bin, filepath.Join(c.dir, "out-"+kind), "--max-sessions", strconv.Itoa(4*c.n+64),
		"--max-sessions-per-host", strconv.Itoa(4*c.n+64), "--ping-interval", "1h")
	if err != nil {
		return webRoomResult{}, err
	}
	defer func() { _, _ = srv.Stop() }()
	if _, err := srv.State(true); err != nil {
		return webRoomResult{}, err
	}
	rss0, err := procStatus(srv.Pid(), "VmRSS")
	if err != nil {
		return webRoomResult{}, err
	}

	var got atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	want := int64(c.n * c.msgs)
	onMsg := func() {
		if got.Add(1) == want {
			once.Do(func() { close(all) })
		}
	}
	var members []participant
	defer func() {
		for _, m := range members {
			m.close()
		}
	}()
	for i := range c.n + 1 {
		var m participant
		var err error
		name := fmt.Sprintf("p%d", i)
		count := onMsg
		if i == c.n {
			count = func() {} // the sender
		}
		if kind == "web" {
			m, err = joinWeb(srv.Addr, name, count)
		} else {
			m, err = joinChat(srv.Addr, name, count)
		}
		if err != nil {
			return webRoomResult{}, fmt.Errorf("participant %d: %w", i, err)
		}
		members = append(members, m)
	}
	if _, err := srv.State(true); err != nil {
		return webRoomResult{}, err
	}
	rss1, err := procStatus(srv.Pid(), "VmRSS")
	if err != nil {
		return webRoomResult{}, err
	}

	msg := fmt.Sprintf("%0*d", c.size, 0)
	sender := members[c.n]
	start := time.Now()
	for range c.msgs {
		if err := sender.send(msg); err != nil {
			return webRoomResult{}, err
		}
	}
	if err := sender.flush(); err != nil {
		return webRoomResult{}, err
	}
	select {
	case <-all:
	case <-time.After(c.limit):
		return webRoomResult{}, fmt.Errorf("%d of %d deliveries after %v", got.Load(), want, c.limit)
	}
	elapsed := time.Since(start)
	return webRoomResult{rate: float64(want) / elapsed.Seconds(), rss: float64(rss1-rss0) / float64(c.n+1)}, nil
}

type chatMember struct{ cl *session.Client }

func joinChat(addr, name string, onMsg func()) (participant, error) {
	// Dial returns once the server has welcomed the participant.
	cl, err := session.Dial(context.Background(), addr, session.ClientConfig{
		Hello: &session.Hello{V: session.ProtocolVersion, Name: name, Chat: true},
		OnEvent: func(ev session.Event) {
			if ev.Type == session.EventMessage {
				onMsg()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return chatMember{cl}, nil
}

func (m chatMember) send(text string) error { return m.cl.Send([]byte(text)) }
func (m chatMember) flush() error           { return m.cl.Flush() }
func (m chatMember) close()                 { _ = m.cl.Abort() }

type webMember struct {
	ws *websocket.Conn
}

func joinWeb(addr, name string, onMsg func()) (participant, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": []string{"http://" + addr}}})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(16 << 20)
	hello, _ := json.Marshal(session.Hello{V: session.ProtocolVersion, Name: name, Chat: true})
	if err := ws.Write(ctx, websocket.MessageText, append([]byte(session.HelloPrefix), hello...)); err != nil {
		return nil, err
	}
	welcomed := make(chan struct{})
	go func() {
		var once sync.Once
		for {
			_, p, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var ev struct {
				T string `json:"t"`
			}
			_ = json.Unmarshal(p, &ev)
			switch ev.T {
			case session.EventWelcome:
				once.Do(func() { close(welcomed) })
			case session.EventMessage:
				onMsg()
			}
		}
	}()
	select {
	case <-welcomed:
	case <-ctx.Done():
		_ = ws.CloseNow()
		return nil, errors.New("no welcome")
	}
	return webMember{ws}, nil
}

func (m webMember) send(text string) error {
	return m.ws.Write(context.Background(), websocket.MessageText, []byte(text))
}
func (m webMember) flush() error { return nil }
func (m webMember) close()       { _ = m.ws.CloseNow() }
