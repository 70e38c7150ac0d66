package main

import (
	"strings"
	"testing"

	"github.com/lanmsg/lanmsg/session"
)

// TestSendStoppedInputLog: when a message over the limit stops the input,
// send does not first log that the delivery was a success; it logs how many
// messages before it were confirmed, if any, then the error.
func TestSendStoppedInputLog(t *testing.T) {
	addr, _ := startServer(t, session.Text)
	long := strings.Repeat("x", 17)

	code, _, stderr := runLanmsg(t, long+"\n", "send", "--server", addr, "--max-payload", "16")
	if code != exitUsage || strings.Contains(stderr, "delivered, confirmed") {
		t.Errorf("first line too long: exit %d, and the log claims a delivery:\n%s", code, stderr)
	}

	code, _, stderr = runLanmsg(t, "ok\n"+long+"\n", "send", "--server", addr, "--max-payload", "16")
	if code != exitUsage || strings.Contains(stderr, `"message":"delivered, confirmed by the server"`) ||
		!strings.Contains(stderr, `"messages":1,`) || !strings.Contains(stderr, "the messages before the one that stopped the input were delivered, confirmed") {
		t.Errorf("second line too long: exit %d:\n%s", code, stderr)
	}
	if i, j := strings.Index(stderr, "were delivered, confirmed"), strings.Index(stderr, "lanmsg: error: line 2 is longer"); i < 0 || j < i {
		t.Errorf("the log and the error are not in that order:\n%s", stderr)
	}
}
