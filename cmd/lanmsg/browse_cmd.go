package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

type browseCmd struct {
	mdnsFlags
	Timeout time.Duration `default:"1.5s" placeholder:"DURATION" help:"How long to look for servers. Default ${default}."`
	JSON    bool          `help:"Print JSON Lines, one object per server: name, host, addrs, port, txt, trust (what your pins make of it)."`
	Watch   bool          `help:"Follow the LAN until interrupted (Ctrl-C), instead of a snapshot: a line for each server as it appears (+), changes address, port or TXT (~) and leaves (-); with --json, an \"event\" field of add, change or remove. --timeout does not apply."`
}

func (c *browseCmd) Run(ctx context.Context, log *zerolog.Logger, std streams, l lan, dir configDir) error {
	if err := checkTimeouts(map[string]time.Duration{"--timeout": c.Timeout}); err != nil {
		return err
	}
	ifi, err := c.iface()
	if err != nil {
		return err
	}
	if c.Watch {
		return c.watch(ctx, log, std, l, ifi)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	known := browsePins(dir, log)
	var seen []discovery.Service // for browseState's conflicts
	n := 0
	err = l.Browse(ctx, browseConfig(log, ifi), func(s discovery.Service) {
		n++
		st := browseState(known, seen, s)
		seen = append(seen, s)
		if c.JSON {
			writeServiceJSON(std.out, s, "", st)
			return
		}
		line := serviceLine(s)
		if st != "" {
			line += "  " + st.mark()
		}
		_, _ = fmt.Fprintln(std.out, line)
	})
	if err != nil {
		return browseError(err)
	}
	if ctx.Err() == context.Canceled {
		return ctx.Err() // interrupted, not "nothing found"
	}
	if n == 0 {
		return &cliError{code: exitUnreachable, err: fmt.Errorf("no lanmsg server found on the LAN within %v", c.Timeout), hint: browseHint}
	}
	return nil
}

// watch prints each event as it happens, one write per line, until interrupted.
func (c *browseCmd) watch(ctx context.Context, log *zerolog.Logger, std streams, l lan, ifi []string) error {
	marks := map[discovery.EventKind]string{discovery.Added: "+", discovery.Changed: "~", discovery.Removed: "-"}
	err := l.Watch(ctx, browseConfig(log, ifi), func(ev discovery.Event) {
		if c.JSON {
			writeServiceJSON(std.out, ev.Service, ev.Kind.String(), "")
		} else {
			_, _ = fmt.Fprintln(std.out, marks[ev.Kind]+" "+serviceLine(ev.Service))
		}
	})
	if err != nil {
		return browseError(err)
	}
	return nil // interrupted: the normal end of watching
}

func browseError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	hint := "this machine needs a multicast-capable network interface that is up; give the address with --server HOST:PORT instead"
	if neterr.MulticastBlocked(err) {
		hint = multicastBlockedHint(runtime.GOOS)
	}
	return &cliError{code: exitFailure, err: fmt.Errorf("cannot look for servers over mDNS: %w", err), hint: hint}
}

// multicastBlockedHint names the setting that blocks mDNS on goos.
func multicastBlockedHint(goos string) string {
	const orServer = "; or give the address with --server HOST:PORT"
	switch goos {
	case "darwin", "ios":
		return "macOS's Local Network privacy blocks mDNS for this program: allow your terminal app in System Settings > Privacy & Security > Local Network, then run it again" + orServer
	case "windows":
		return "Windows Defender Firewall blocks mDNS: set this network's profile to Private (Settings > Network & internet > your network > Network profile type), or allow UDP port 5353 in Windows Defender Firewall" + orServer
	}
	return "a firewall blocks mDNS: allow UDP port 5353 (ufw: 'sudo ufw allow 5353/udp'; firewalld: 'sudo firewall-cmd --add-service=mdns')" + orServer
}

// serviceJSON is the JSON form of a discovered server.
type serviceJSON struct {
	Event string            `json:"event,omitempty"` // browse --watch: add, change or remove
	Name  string            `json:"name"`
	Host  string            `json:"host"`
	Addrs []string          `json:"addrs"`
	Port  int               `json:"port"`
	TXT   map[string]string `json:"txt"`
	URL   string            `json:"url,omitempty"` // the chat page, if it has one
	// Trust is what your pins make of the server (browse, not --watch):
	// pinned, pinned-renamed, new, conflict-key, conflict-name or plain.
	Trust trustState `json:"trust,omitempty"`
}

func writeServiceJSON(w io.Writer, s discovery.Service, event string, st trustState) {
	addrs := make([]string, len(s.Addrs))
	for i, a := range s.Addrs {
		addrs[i] = a.String()
	}
	txt := s.TXT
	if txt == nil {
		txt = map[string]string{}
	}
	b, _ := json.Marshal(serviceJSON{Event: event, Name: s.Instance, Host: s.Host, Addrs: addrs, Port: s.Port, TXT: txt, URL: pageURLOf(s), Trust: st})
	_, _ = fmt.Fprintf(w, "%s\n", b)
}

// serviceLine describes a server on one line for a person:
//
//	vm (2)  vm-2.local.  198.18.0.11 port 5050  ver=v1.0.0 id=...
//
// Names and TXT come from whoever answers on the LAN: they are escaped as
// chat text is, so that they stay on the line and cannot drive the terminal.
func serviceLine(s discovery.Service) string {
	addrs := make([]string, len(s.Addrs))
	for i, a := range s.Addrs {
		addrs[i] = a.String()
	}
	keys := make([]string, 0, len(s.TXT))
	for k := range s.TXT {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	txt := make([]string, len(keys))
	for i, k := range keys {
		txt[i] = esc(k) + "=" + esc(s.TXT[k])
	}
	line := fmt.Sprintf("%s %s %s port %d  %s", padRight(esc(s.Instance), 24), padRight(esc(s.Host), 24), strings.Join(addrs, ","), s.Port, strings.Join(txt, " "))
	if u := pageURLOf(s); u != "" {
		line += "  " + u
	}
	return line
}

// webTXT is the TXT key of a server with a chat page: its path on the
// advertised port ("/").
const webTXT = "web"

// pageURLOf is the URL of a server's chat page, http://ADDR:PORT/ with the
// first address it lists, or "" when it has none.
func pageURLOf(s discovery.Service) string {
	if s.TXT[webTXT] != "/" || len(s.Addrs) == 0 {
		return ""
	}
	return pageURL(s.Addrs[0], s.Port)
}

// pageURL is the chat page's URL at addr and port.
func pageURL(addr netip.Addr, port int) string {
	// A zone (fe80::1%eth0) is written %25 in a URL (RFC 6874).
	hp := strings.Replace(netip.AddrPortFrom(addr, uint16(port)).String(), "%", "%25", 1)
	return "http://" + hp + "/"
}

// padRight pads s with spaces to n columns on a terminal: an emoji or a CJK
// letter takes two columns, a combining accent none.
func padRight(s string, n int) string {
	if w := runewidth.StringWidth(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}
