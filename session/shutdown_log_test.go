package session

import (
	"context"
	"testing"
	"time"
)

// TestShutdownLogsNormally: a session ended by Shutdown (SIGTERM in serve) is
// logged as a normal end, at info level, with no error: the read the server
// interrupted itself is not news ("read header: i/o timeout").
func TestShutdownLogsNormally(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{}, Text, nil)
	idle := dialRaw(t, ts.addr)                                 // between frames
	mid := dialRaw(t, ts.addr)                                  // inside a header
	mustWrite(t, mid, frame("cut short")[:HeaderSizeForTest/2]) // the rest never comes
	ts.waitSessions(t, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectReset(t, idle, 5*time.Second)
	expectReset(t, mid, 5*time.Second)
	if n := ts.log.Count("session closed", `"reason":"server shutting down"`, `"level":"info"`); n != 2 {
		t.Errorf("%d sessions logged at info as ended by shutdown, want 2:\n%s", n, ts.log.String())
	}
	if n := ts.log.Count("session closed", `"error"`); n != 0 {
		t.Errorf("%d sessions ended by shutdown logged an error:\n%s", n, ts.log.String())
	}
}
