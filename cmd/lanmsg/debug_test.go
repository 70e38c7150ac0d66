package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/rooms"
)

// TestDebugStateRooms: /debug/state lists the rooms with their members and
// each room's stream with its size.
func TestDebugStateRooms(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	bus, err := rooms.Start(rooms.Config{DataDir: t.TempDir(), Site: "0011223344556677", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	srv, addr := serveSessions(t, session.Config{Bus: bus}, io.Discard, session.Text, &log)
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := serveDebug(dln, srv, bus, &log)
	t.Cleanup(func() { _ = hs.Close() })

	got := make(chan session.Event, 16)
	watch, err := session.Dial(context.Background(), addr, session.ClientConfig{
		Hello:   &session.Hello{Name: "watcher", Chat: true, Room: "ops"},
		OnEvent: func(ev session.Event) { got <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Abort() }()
	poster, err := session.Dial(context.Background(), addr, session.ClientConfig{Hello: &session.Hello{Name: "p", Room: "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two"} {
		if err := poster.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := poster.Close(); err != nil {
		t.Fatal(err)
	}
	// Relayed to the watcher means stored.
	for n := 0; n < 2; {
		select {
		case ev := <-got:
			if ev.Type == session.EventMessage {
				n++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the watcher did not get both messages")
		}
	}
	resp, err := http.Get("http://" + dln.Addr().String() + "/debug/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Rooms   []session.RoomInfo `json:"rooms"`
		Streams []rooms.RoomStats  `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Rooms) != 1 || st.Rooms[0].Name != "ops" || len(st.Rooms[0].Members) != 1 || st.Rooms[0].Members[0] != "watcher" {
		t.Errorf("rooms %+v, want ops with watcher", st.Rooms)
	}
	if len(st.Streams) != 1 || st.Streams[0].Room != "ops" || st.Streams[0].Messages != 2 || st.Streams[0].Bytes == 0 {
		t.Errorf("streams %+v, want ops with 2 messages", st.Streams)
	}
}
