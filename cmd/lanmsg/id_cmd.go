package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"
)

type idCmd struct {
	JSON bool `help:"Print one JSON object: fingerprint, code, id, dir."`
}

// idJSON is the JSON form of lanmsg id.
type idJSON struct {
	Fingerprint string `json:"fingerprint"`
	Code        string `json:"code"`
	ID          string `json:"id"`
	Dir         string `json:"dir"`
}

func (c *idCmd) Run(_ context.Context, log *zerolog.Logger, std streams, dir configDir) error {
	id, err := dir.identity()
	if err != nil {
		return err
	}
	if id.Created {
		log.Info().Str("dir", id.Dir).Msg("made a new key for this config dir")
	}
	if c.JSON {
		return json.NewEncoder(std.out).Encode(idJSON{
			Fingerprint: id.Fingerprint.String(),
			Code:        id.Fingerprint.ShortCode(),
			ID:          id.Fingerprint.ServerID(),
			Dir:         id.Dir,
		})
	}
	_, err = fmt.Fprintf(std.out, "%s\n%s\n", id.Fingerprint, id.Fingerprint.ShortCode())
	return err
}
