package main

// Names and TXT values from the network are escaped before they reach a
// terminal: in browse, the picker and the errors that name servers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery"
)

// hostile is a service whose name and TXT would drive a terminal if printed
// raw: an OSC 52 clipboard write and a screen clear.
func hostile(t *testing.T, addr string) discovery.Service {
	s := svc(t, "evil\x1b]52;c;AAAA\x07", addr)
	s.Host = "h\x1b[2J.local."
	s.TXT["x\x1b[2J"] = "\x1b]52;c;AAAA\x07\x1b[2J"
	return s
}

func TestBrowseEscapes(t *testing.T) {
	s := hostile(t, "198.18.0.11:5050")
	l := &fakeLAN{services: []discovery.Service{s}}
	code, out, errOut := runFake(t, l, "", "browse", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
		t.Errorf("browse printed control bytes from the network: %q", out)
	}
	if !strings.HasPrefix(out, `evil\x1b]52;c;AAAA\x07 `) || !strings.Contains(out, `x\x1b[2J=\x1b]52;c;AAAA\x07\x1b[2J`) || !strings.Contains(out, `h\x1b[2J.local.`) {
		t.Errorf("browse output %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("one server must be one line: %q", out)
	}

	// --json keeps the values as they are (JSON escapes them).
	code, out, errOut = runFake(t, l, "", "browse", "--json", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("JSON output holds a raw ESC: %q", out)
	}
	var got serviceJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != s.Instance || got.Host != s.Host || got.TXT["x\x1b[2J"] != s.TXT["x\x1b[2J"] {
		t.Errorf("JSON changed the values: %+v", got)
	}
}

func TestPickEscapes(t *testing.T) {
	found := []discovery.Service{hostile(t, "198.18.0.11:5050"), svc(t, "office", "198.18.0.12:5050")}
	tty := &fakeTTY{Reader: strings.NewReader("nope\x1b[2J\n1\n")}
	got, err := choose(found, func() (io.ReadWriteCloser, error) { return tty, nil }, time.Second, nil)
	if err != nil || got.name != found[0].Instance {
		t.Fatalf("got %q, %v", got.name, err)
	}
	screen := tty.out.String()
	if strings.ContainsRune(screen, 0x1b) || strings.ContainsRune(screen, 0x07) {
		t.Errorf("the picker showed control bytes: %q", screen)
	}
	if !strings.Contains(screen, `1) evil\x1b]52;c;AAAA\x07  (198.18.0.11 port 5050)`) {
		t.Errorf("the picker shows:\n%s", screen)
	}

	// Without a terminal, the error lists the names, quoted.
	_, err = choose(found, func() (io.ReadWriteCloser, error) { return nil, errors.New("no tty") }, time.Second, nil)
	var b bytes.Buffer
	report(&b, err)
	if strings.ContainsRune(b.String(), 0x1b) {
		t.Errorf("the error shows control bytes: %q", b.String())
	}
}

// TestErrorsEscapeNames: errors that name servers found on the LAN do
// not print their names raw.
func TestErrorsEscapeNames(t *testing.T) {
	plain := plainServer(t)
	withHello := hostile(t, plain)
	withHello.TXT["hello"] = "1"
	for _, tc := range []struct {
		name string
		l    lan
		args []string
	}{
		{"send --to, not found", &fakeLAN{services: []discovery.Service{hostile(t, "198.18.0.11:5050")}}, []string{"send", "--to", "kitchen", "--browse-timeout", "50ms", "hi"}},
		{"chat, no hello", &fakeLAN{services: []discovery.Service{hostile(t, plain)}}, []string{"chat", "--browse-timeout", "50ms"}},
		{"chat, hello but no extension", &fakeLAN{services: []discovery.Service{withHello}}, []string{"chat", "--browse-timeout", "50ms", "--confirm-timeout", "300ms"}},
		{"send, unreachable", &fakeLAN{services: []discovery.Service{hostile(t, closedPort(t))}}, []string{"send", "--browse-timeout", "50ms", "hi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runFake(t, tc.l, "", tc.args...)
			if code == 0 {
				t.Fatalf("exit 0:\n%s", errOut)
			}
			if strings.ContainsRune(out+errOut, 0x1b) {
				t.Errorf("control bytes from the network in the output:\nstdout %q\nstderr %q", out, errOut)
			}
		})
	}
}
