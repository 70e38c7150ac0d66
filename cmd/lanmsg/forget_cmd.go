package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session/trust"
)

// forgetCmd removes pins, so that the next contact pins the server's key
// anew: the way to accept a server that was reinstalled with a new key.
type forgetCmd struct {
	Server string `arg:"" name:"server" help:"The server's name (as in --to NAME; look-alike spellings match too) or HOST:PORT (as in --server)."`
}

func (c *forgetCmd) Run(_ context.Context, log *zerolog.Logger, std streams, dir configDir) error {
	p, err := dir.path()
	if err != nil {
		return err
	}
	known, err := trust.KnownServersIn(p)
	if err != nil {
		return trustError(err)
	}
	gone, err := known.Forget(c.Server)
	if errors.Is(err, trust.ErrNotPinned) || err == nil && len(gone) == 0 {
		return &cliError{code: exitUsage, err: fmt.Errorf("no pinned server %q in %s", c.Server, known.Path()),
			hint: "give the name as 'lanmsg send --to' takes it, or HOST:PORT as --server takes it; the file lists every pin"}
	}
	if err != nil {
		return trustError(err)
	}
	for _, g := range gone {
		_, _ = fmt.Fprintf(std.out, "forgot %s\n", g)
	}
	log.Info().Str("file", known.Path()).Int("pins", len(gone)).Msg("the next contact pins the server's key anew (and shows it: compare it with 'lanmsg id' on the server)")
	return nil
}
