package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/rooms"
)

// roomFlags are serve's flags for rooms, history and direct messages.
type roomFlags struct {
	DataDir      string        `type:"path" placeholder:"DIR" help:"Where the server keeps room history and waiting direct messages (an embedded NATS JetStream store). One serve per directory. Default: 'data' in the config dir (~/.config/lanmsg/data on Linux)."`
	MaxRooms     int           `default:"256" placeholder:"N" help:"Most rooms the server keeps; joining a new one past it is refused. Default ${default}."`
	History      int           `default:"20" placeholder:"N" help:"How many of a room's last messages a participant joining it is shown (0: none). Default ${default}."`
	RoomMaxMsgs  int64         `default:"10000" placeholder:"N" help:"Messages kept per room; the oldest go first. Default ${default}."`
	RoomMaxBytes byteSize      `default:"64MiB" placeholder:"SIZE" help:"Bytes kept per room; the oldest messages go first. Default ${default}."`
	RoomMaxAge   time.Duration `default:"720h" placeholder:"DURATION" help:"How long a room keeps a message. Default ${default} (30 days)."`
	DMMaxMsgs    int64         `name:"dm-max-msgs" default:"100" placeholder:"N" help:"Direct messages that may wait for one offline recipient; past it, the oldest go. Default ${default}."`
	DMMaxAge     time.Duration `name:"dm-max-age" default:"168h" placeholder:"DURATION" help:"How long a direct message waits for its offline recipient. Default ${default} (7 days)."`
	DMMaxBytes   byteSize      `name:"dm-max-bytes" default:"64MiB" placeholder:"SIZE" help:"Bytes of direct messages that may wait, for all recipients together. Default ${default}."`
	NATS         string        `name:"nats" placeholder:"URL" help:"Use this NATS server (with JetStream) for rooms, history and direct messages instead of the embedded one, e.g. nats://127.0.0.1:4222."`

	// configureServer, when set (by the link flags), changes the embedded
	// server's options before it starts.
	configureServer func(*server.Options) error
}

// startBus takes the data dir and starts the message bus in the
// background, so that serve listens as soon as before.
func (f *roomFlags) startBus(dir configDir, site string, maxPayload int, cfg *session.Config, log *zerolog.Logger) (*rooms.Bus, error) {
	if f.MaxRooms < 1 {
		return nil, &cliError{code: exitUsage, err: fmt.Errorf("--max-rooms must be at least 1, got %d", f.MaxRooms)}
	}
	if f.History < 0 {
		return nil, &cliError{code: exitUsage, err: fmt.Errorf("--history must be 0 or more, got %d", f.History)}
	}
	for flag, v := range map[string]int64{"--room-max-msgs": f.RoomMaxMsgs, "--room-max-bytes": int64(f.RoomMaxBytes), "--dm-max-msgs": f.DMMaxMsgs, "--dm-max-bytes": int64(f.DMMaxBytes)} {
		if v < 1 {
			return nil, &cliError{code: exitUsage, err: fmt.Errorf("%s must be at least 1, got %d", flag, v)}
		}
	}
	if err := checkTimeouts(map[string]time.Duration{"--room-max-age": f.RoomMaxAge, "--dm-max-age": f.DMMaxAge}); err != nil {
		return nil, err
	}
	dataDir := f.DataDir
	if dataDir == "" && f.NATS == "" {
		p, err := dir.path()
		if err != nil {
			return nil, err
		}
		dataDir = filepath.Join(p, "data")
	}
	bus, err := rooms.Start(rooms.Config{
		DataDir: dataDir,
		URL:     f.NATS,
		Site:    site,
		Limits: rooms.Limits{RoomMsgs: f.RoomMaxMsgs, RoomBytes: int64(f.RoomMaxBytes), RoomAge: f.RoomMaxAge,
			DMMsgs: f.DMMaxMsgs, DMAge: f.DMMaxAge, DMBytes: int64(f.DMMaxBytes), MsgSize: maxPayload},
		Log:             log,
		ConfigureServer: f.configureServer,
	})
	var inUse *rooms.InUseError
	switch {
	case errors.As(err, &inUse):
		return nil, &cliError{code: exitFailure, err: err,
			hint: "another lanmsg serve keeps its rooms there; stop it, or give this one its own --data-dir DIR"}
	case err != nil:
		return nil, &cliError{code: exitFailure, err: err, hint: "give a directory this user may write with --data-dir DIR"}
	}
	cfg.Bus = bus
	cfg.MaxRooms = f.MaxRooms
	cfg.History = f.History
	if f.History == 0 {
		cfg.History = -1
	}
	return bus, nil
}

// busHint says what to do when the message bus did not start.
func busHint(url string) string {
	if url != "" {
		return "check that NATS at " + url + " runs with JetStream enabled, or leave out --nats to use the embedded one"
	}
	return "check that the data dir (--data-dir) is writable and not damaged; move it away to start with empty rooms"
}
