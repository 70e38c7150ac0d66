package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// TestChatPipeCommands: from a pipe, known commands work, an unknown one is
// reported on stderr and not sent, //text sends /text, and empty lines send
// nothing.
func TestChatPipeCommands(t *testing.T) {
	_, addr, out := startServerCtl(t)
	var o, e sessiontest.SyncBuffer
	in := "first\n\n   \n/qiut now\n//slash\n/who\n/help\nlast\n"
	code := runWith(refusingLAN{}, []string{"--log-format", "json", "chat", "--server", addr, "--as", "script"}, strings.NewReader(in), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, e.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		_, msg, _ := strings.Cut(l, " : ")
		got = append(got, msg)
	}
	if want := []string{"first", "/slash", "last"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the server received %q, want %q", got, want)
	}
	if !strings.Contains(e.String(), "lanmsg: line 4: unknown command /qiut, not sent; the commands are /help, /history, /join, /msg, /quit, /rooms, /who; to send a line starting with /, type it as //\n") {
		t.Errorf("stderr does not report the unknown command:\n%s", e.String())
	}
	if n := strings.Count(o.String(), "* here: script\n"); n != 2 {
		t.Errorf("/who answered %d times (with the join), want 2:\n%s", n, o.String())
	}
	if !strings.Contains(o.String(), "* type a line to send it") {
		t.Errorf("/help did not answer:\n%s", o.String())
	}
}

// TestChatJSONWhoHasTime: in --json, the answer to /who has a time, as every
// other event does.
func TestChatJSONWhoHasTime(t *testing.T) {
	_, addr, _ := startServerCtl(t)
	var o, e bytes.Buffer
	before := time.Now().Add(-time.Second)
	code := runWith(refusingLAN{}, []string{"--log-format", "json", "chat", "--server", addr, "--as", "script", "--json"}, strings.NewReader("/who\n"), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, e.String())
	}
	lines := strings.Split(strings.TrimSpace(o.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the who on joining and the answer to /who:\n%s", o.String())
	}
	for _, l := range lines {
		var ev struct {
			T    string    `json:"t"`
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.T != "who" || ev.Time.Before(before) || ev.Time.After(time.Now()) {
			t.Errorf("%s: want a who event with the time (%v)", l, err)
		}
	}
}
