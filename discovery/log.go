package discovery

import (
	"log"
	"strings"

	"github.com/rs/zerolog"
)

// debugWriter turns hashicorp/mdns's *log.Logger output into zerolog debug events.
type debugWriter struct{ log *zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Str("lib", "hashicorp/mdns").Msg(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func stdLogger(l *zerolog.Logger) *log.Logger { return log.New(debugWriter{l}, "", 0) }
