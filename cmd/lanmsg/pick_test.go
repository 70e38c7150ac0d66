package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session/sessiontest"
)

// pipeTTY is a terminal the test types into, whose screen it reads.
type pipeTTY struct {
	*io.PipeReader
	screen sessiontest.SyncBuffer
}

func newPipeTTY(t *testing.T) (*pipeTTY, *io.PipeWriter) {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return &pipeTTY{PipeReader: r}, w
}

func (p *pipeTTY) Write(b []byte) (int, error) { return p.screen.Write(b) }
func (p *pipeTTY) Close() error                { return p.PipeReader.Close() }

// TestPickOrderedByName: the list is in the order of the names, whatever
// order the answers came in, so a number means the same server every run.
func TestPickOrderedByName(t *testing.T) {
	a, b, c := svc(t, "attic", "198.18.0.11:5050"), svc(t, "Bakery", "198.18.0.12:5050"), svc(t, "cellar", "198.18.0.13:5050")
	for _, order := range [][]discovery.Service{{a, b, c}, {c, b, a}, {b, c, a}} {
		tty := &fakeTTY{Reader: strings.NewReader("2\n")}
		got, err := choose(order, func() (io.ReadWriteCloser, error) { return tty, nil }, time.Second, nil)
		if err != nil || got.name != "Bakery" {
			t.Errorf("answers in the order %s, %s, %s: 2 picked %q, %v", order[0].Instance, order[1].Instance, order[2].Instance, got.name, err)
		}
		screen := tty.out.String()
		i, j, k := strings.Index(screen, "1) attic"), strings.Index(screen, "2) Bakery"), strings.Index(screen, "3) cellar")
		if i < 0 || j < i || k < j {
			t.Errorf("the list is not ordered by name:\n%s", screen)
		}
	}
}

// TestPickLateArrivals: a server that answers while the list is shown is
// added at its end; the numbers already shown stay, and it can be picked.
func TestPickLateArrivals(t *testing.T) {
	more := make(chan discovery.Service)
	tty, keys := newPipeTTY(t)
	p := picker{question: sendQuestion, openTTY: func() (io.ReadWriteCloser, error) { return tty, nil }, more: more}
	type result struct {
		tgt target
		err error
	}
	done := make(chan result, 1)
	go func() {
		tgt, err := p.choose(t.Context(), []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}, time.Second)
		done <- result{tgt, err}
	}()
	sessiontest.WaitFor(t, 10*time.Second, "the question", func() bool { return strings.Contains(tty.screen.String(), "[1-2, or q to cancel]: ") })
	more <- svc(t, "attic", "198.18.0.13:5050")   // before the others by name
	more <- svc(t, "kitchen", "198.18.0.11:5050") // already shown
	sessiontest.WaitFor(t, 10*time.Second, "the question with three choices", func() bool { return strings.Contains(tty.screen.String(), "[1-3, or q to cancel]: ") })
	if _, err := io.WriteString(keys, "3\n"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.tgt.name != "attic" {
		t.Fatalf("3 picked %q, %v", r.tgt.name, r.err)
	}
	screen := tty.screen.String()
	for _, want := range []string{"1) kitchen  (198.18.0.11 port 5050)", "2) office  (198.18.0.12 port 5050)", "3) attic  (198.18.0.13 port 5050)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen does not show %q:\n%s", want, screen)
		}
	}
	if strings.Count(screen, "kitchen") != 1 {
		t.Errorf("kitchen is listed twice:\n%s", screen)
	}
}

// TestPickInterrupted: Ctrl-C while the picker waits for an answer ends it at
// once with the context's error, which lanmsg reports as an interruption.
func TestPickInterrupted(t *testing.T) {
	tty, _ := newPipeTTY(t) // nothing is ever typed
	ctx, cancel := context.WithCancel(t.Context())
	p := picker{question: sendQuestion, openTTY: func() (io.ReadWriteCloser, error) { return tty, nil }}
	done := make(chan error, 1)
	go func() {
		_, err := p.choose(ctx, []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}, time.Second)
		done <- err
	}()
	sessiontest.WaitFor(t, 10*time.Second, "the question", func() bool { return strings.Contains(tty.screen.String(), "or q to cancel]: ") })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted picker returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the picker went on waiting for an answer after Ctrl-C")
	}
}

// TestLookingInterrupted: Ctrl-C while looking for servers ends the search at
// once, without showing a picker, even though servers have answered.
func TestLookingInterrupted(t *testing.T) {
	l := &fakeLAN{block: true, waiting: make(chan struct{}), services: []discovery.Service{svc(t, "kitchen", "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}}
	ctx, cancel := context.WithCancel(t.Context())
	opened := make(chan struct{}, 1)
	p := picker{question: sendQuestion, openTTY: func() (io.ReadWriteCloser, error) {
		opened <- struct{}{}
		return nil, errors.New("no tty")
	}}
	done := make(chan error, 1)
	go func() {
		_, err := chooseOnLAN(ctx, l, discovery.BrowseConfig{}, time.Minute, p)
		done <- err
	}()
	<-l.waiting // both servers have answered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted search returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the search went on after Ctrl-C")
	}
	select {
	case <-opened:
		t.Error("the picker was shown after Ctrl-C")
	default:
	}
}
