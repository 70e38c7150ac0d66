package session

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/transport"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil for valid
	}{
		{"zero value", Config{}, nil},
		{"all set", Config{MaxPayload: 100, MaxSessions: 3, IdleTimeout: time.Second, HeaderTimeout: time.Second, ReadTimeout: time.Second}, nil},
		{"max payload fits !DISCONNECT", Config{MaxPayload: len(transport.Disconnect)}, nil},
		{"max payload below !DISCONNECT", Config{MaxPayload: len(transport.Disconnect) - 1}, []string{"max payload"}},
		{"max payload 1", Config{MaxPayload: 1}, []string{"max payload"}},
		{"max payload at limit", Config{MaxPayload: transport.MaxPayloadLimit}, nil},
		{"max payload over limit", Config{MaxPayload: transport.MaxPayloadLimit + 1}, []string{"max payload"}},
		{"max payload negative", Config{MaxPayload: -1}, []string{"max payload"}},
		{"max sessions negative", Config{MaxSessions: -1}, []string{"max sessions"}},
		{"idle timeout negative", Config{IdleTimeout: -time.Second}, []string{"idle timeout"}},
		{"header timeout negative", Config{HeaderTimeout: -1}, []string{"header timeout"}},
		{"read timeout negative", Config{ReadTimeout: -time.Millisecond}, []string{"read timeout"}},
		{"several", Config{MaxPayload: -5, ReadTimeout: -1}, []string{"max payload", "read timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error about %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			// NewServer refuses what Validate refuses.
			log := zerolog.New(io.Discard)
			if srv, err := NewServer(tt.cfg, io.Discard, Text, &log); err == nil || srv != nil {
				t.Errorf("NewServer accepted an invalid config: %v, %v", srv, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	srv, err := NewServer(Config{IdleTimeout: time.Second}, io.Discard, Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		MaxPayload:    transport.DefaultMaxPayload,
		MaxSessions:   DefaultMaxSessions,
		IdleTimeout:   time.Second,
		HeaderTimeout: DefaultHeaderTimeout,
		ReadTimeout:   DefaultReadTimeout,
		SendQueue:     DefaultSendQueue,
		SendTimeout:   DefaultSendTimeout,

		MaxSessionsPerHost: DefaultMaxSessionsPerHost,
		MemoryBudget:       DefaultMemoryBudget,
		MinRate:            DefaultMinRate,
		MinRateWindow:      DefaultMinRateWindow,
		PingInterval:       DefaultPingInterval,
		History:            DefaultHistory,
		MaxRooms:           DefaultMaxRooms,
	}
	if got := srv.Config(); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}
