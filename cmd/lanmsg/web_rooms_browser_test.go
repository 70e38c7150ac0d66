package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// TestWebPageRooms: on a server with rooms, the page joins the default
// room and shows its history on load.
func TestWebPageRooms(t *testing.T) {
	newTab, _ := browser(t)
	log := zerolog.New(zerolog.NewTestWriter(t))
	bus, err := rooms.Start(rooms.Config{DataDir: t.TempDir(), Site: "0011223344556677", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() }) // after the server's shutdown
	_, addr, _ := startWebServer(t, session.Config{Bus: bus})
	url := "http://" + addr + "/"

	carl := startChat(t, refusingLAN{}, "--server", addr, "--as", "carl")
	dora := startChat(t, refusingLAN{}, "--server", addr, "--as", "dora")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("carl's screen:\n%s\ndora's:\n%s", carl.out.String(), dora.out.String())
		}
	})
	sessiontest.WaitFor(t, 30*time.Second, "carl to see dora join", func() bool { return strings.Contains(carl.out.String(), "dora") })
	carl.say(t, "said before the page")
	// Relayed to dora: stored in the room's history.
	sessiontest.WaitFor(t, 10*time.Second, "dora to get carl's message", func() bool { return strings.Contains(dora.out.String(), "[carl] said before the page") })

	ann := newTab()
	joinPage(t, ann, url, "ann", "name")
	runTab(t, ann, "the history on load",
		poll(`[...document.querySelectorAll("#log li.history")].some(li => li.textContent.includes("carl: said before the page"))`))
	if room := value[string](t, ann, `document.querySelector('input[name="room"]').value`); room != rooms.DefaultRoom {
		t.Errorf("the room field shows %q, want %q", room, rooms.DefaultRoom)
	}

	for _, p := range []*chatProc{carl, dora} {
		p.in.Close()
		p.wait(t)
	}
}
