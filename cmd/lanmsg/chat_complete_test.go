package main

import (
	"io"
	"slices"
	"testing"

	"github.com/lanmsg/lanmsg/session"
)

// TestComplete: Tab completes a command at the start of the line and a name
// elsewhere, as far as the candidates agree, and never puts a name with
// control characters in the line.
func TestComplete(t *testing.T) {
	names := []string{"bob", "Bea", "carol (2)", "carl", "eve\x1b[2J"}
	for _, tc := range []struct {
		line string
		pos  int
		want string // "" for no completion
	}{
		{"/w", 2, "/who"},
		{"/q", 2, "/quit"},
		{"/", 1, ""},              // all three commands: nothing in common to add
		{"hi /w", 5, ""},          // not at the start: not a command
		{"hi bo", 5, "hi bob"},    //
		{"hi BO", 5, "hi bob"},    // any case; the name as it is spelled
		{"hi b", 4, ""},           // bob and Bea agree on nothing more
		{"c", 1, "car"},           // carol (2) and carl agree on "car"
		{"carol", 5, "carol (2)"}, //
		{"ev", 2, ""},             // eve's name would drive the terminal
		{"bo and more", 2, "bob and more"},
		{"", 0, ""},
	} {
		got, pos, ok := complete(tc.line, tc.pos, names)
		if tc.want == "" {
			if ok {
				t.Errorf("complete(%q, %d) = %q, want nothing", tc.line, tc.pos, got)
			}
			continue
		}
		if !ok || got != tc.want || pos != len(tc.want)-(len(tc.line)-tc.pos) {
			t.Errorf("complete(%q, %d) = %q, %d, %v; want %q", tc.line, tc.pos, got, pos, ok, tc.want)
		}
	}
}

// TestRoomNames: the names Tab completes follow who, joins and leaves, of
// one participant or several at once.
func TestRoomNames(t *testing.T) {
	p := &chatPrinter{w: io.Discard}
	p.event(session.Event{Type: session.EventWho, Names: []string{"alice", "bob"}})
	p.event(session.Event{Type: session.EventJoin, Names: []string{"carol", "dave"}})
	p.event(session.Event{Type: session.EventJoin, Name: "erin"})
	p.event(session.Event{Type: session.EventLeave, Name: "bob"})
	p.event(session.Event{Type: session.EventLeave, Names: []string{"dave"}})
	if got, want := p.roomNames(), []string{"alice", "carol", "erin"}; !slices.Equal(got, want) {
		t.Errorf("room names %q, want %q", got, want)
	}
}
