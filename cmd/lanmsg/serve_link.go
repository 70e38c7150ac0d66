package main

import (
	"fmt"
	"net"
	"sync"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/rooms"
	"github.com/lanmsg/lanmsg/session/trust"
	"github.com/lanmsg/lanmsg/transport/neterr"
)

// linkFlags are serve's flags for links between sites (README, "Linking
// sites"; PROTOCOL.md, "Links between sites").
type linkFlags struct {
	LinkListen string   `name:"link-listen" placeholder:"HOST:PORT" help:"Accept links from other lanmsg servers (other sites) on this address; only the keys in --link-allow may link. Rooms, presence and direct messages then span the linked servers."`
	Link       []string `name:"link" placeholder:"HOST:PORT" help:"Link to the lanmsg server whose --link-listen is at HOST:PORT (repeat for several). Its key is pinned on first contact, like any server's."`
	LinkAllow  string   `name:"link-allow" type:"path" placeholder:"FILE" help:"The keys of the servers that may link to --link-listen: one fingerprint a line, as 'lanmsg id' prints it on each (the same format as --allow)."`
}

// setupLinks checks the link flags and makes the links, which start with
// the bus's embedded server; nil without link flags.
func (f *linkFlags) setupLinks(id *trust.Identity, nats string, log *zerolog.Logger) (*rooms.Links, error) {
	if f.LinkListen == "" && len(f.Link) == 0 {
		if f.LinkAllow != "" {
			return nil, &cliError{code: exitUsage, err: fmt.Errorf("--link-allow without --link-listen: no link would be accepted"),
				hint: "add --link-listen HOST:PORT, the address the other sites link to"}
		}
		return nil, nil
	}
	if nats != "" {
		return nil, &cliError{code: exitUsage, err: fmt.Errorf("--link and --link-listen link the embedded NATS server, and --nats replaces it"),
			hint: "link the sites' NATS servers yourself (leaf nodes), or leave out --nats"}
	}
	if f.LinkListen != "" {
		if err := checkHostPort(f.LinkListen, "--link-listen"); err != nil {
			return nil, err
		}
		// The embedded server listens in the background and could only
		// log a failure: the address is tried here first, so that a port
		// in use is an error with a hint, at once.
		ln, err := net.Listen("tcp", f.LinkListen)
		if err != nil {
			ce := listenError(f.LinkListen, err).(*cliError)
			if neterr.AddrInUse(err) {
				ce.hint = "another program (perhaps another lanmsg serve) uses that port; pick another with --link-listen HOST:PORT"
			}
			return nil, ce
		}
		_ = ln.Close()
	}
	for _, r := range f.Link {
		if err := checkHostPort(r, "--link"); err != nil {
			return nil, err
		}
	}
	var allow *trust.AllowList
	if f.LinkListen != "" {
		if f.LinkAllow == "" {
			return nil, &cliError{code: exitUsage, err: rooms.ErrLinkNoAllow,
				hint: "write the keys of the servers that may link here, one a line as 'lanmsg id' prints it on each, to a file and give it with --link-allow FILE"}
		}
		a, err := trust.LoadAllowList(f.LinkAllow)
		if err != nil {
			ce := trustError(err).(*cliError)
			ce.code = exitUsage
			if ce.hint == "" {
				ce.hint = "give a file with one key a line, as 'lanmsg id' prints it on its first line on each server that may link"
			}
			return nil, ce
		}
		allow = a
	}
	pins := &linkPins{dir: id.Dir, log: log}
	l, err := rooms.NewLinks(rooms.LinkConfig{Listen: f.LinkListen, Remotes: f.Link, Identity: id, Allow: allow,
		CheckRemote: pins.check, Log: log})
	if err != nil {
		return nil, &cliError{code: exitUsage, err: err}
	}
	return l, nil
}

// linkPins checks the key of a server linked to against known_servers, as
// `send --server HOST:PORT` does: first contact pins it and shows it, a
// key other than the one pinned refuses the link.
type linkPins struct {
	dir string
	log *zerolog.Logger
	mu  sync.Mutex
}

// check is the links' CheckRemote. It reads known_servers anew each time,
// so that 'lanmsg forget' while serve runs takes effect at the next try.
func (p *linkPins) check(addr string, fp trust.Fingerprint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	known, err := trust.KnownServersIn(p.dir)
	if err != nil {
		return err
	}
	j := known.JudgeAddr(addr, fp)
	switch j.Verdict {
	case trust.Pinned:
		return nil
	case trust.Conflict:
		want := ""
		for i, pin := range j.NamePins {
			if i > 0 {
				want += ", "
			}
			want += pin.Fingerprint.String()
		}
		return fmt.Errorf("the server at %s proved the key %s (code %s), but %s is pinned to %s in %s: an impostor, or that server was reinstalled; if it was, check its new key with its owner ('lanmsg id' on it), then run 'lanmsg forget %s' (the link is tried again every second)",
			addr, fp, fp.ShortCode(), addr, want, known.Path(), addr)
	}
	if _, err := known.Add(addr, fp); err != nil {
		p.log.Warn().Err(err).Str("file", known.Path()).Msg("could not pin the linked server's key; it will count as new next time")
		return nil
	}
	if j.Verdict == trust.New {
		p.log.Info().Str("addr", addr).Str("link_key", fp.String()).Str("code", fp.ShortCode()).Str("file", known.Path()).
			Msg("first contact with the linked server: its key is pinned (compare the code with 'lanmsg id' on that server)")
	}
	return nil
}
