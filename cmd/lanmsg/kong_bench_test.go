package main

import (
	"io"
	"testing"
)

// BenchmarkKongNew measures building kong's model, which a one-shot command
// pays at every start: with every command (lanmsg --help, or a line that
// names none) and with the one command a line names (send).
func BenchmarkKongNew(b *testing.B) {
	for _, only := range []string{"", "send"} {
		name := "all"
		if only != "" {
			name = only
		}
		b.Run(name, func(b *testing.B) {
			exitCode := -1
			for b.Loop() {
				var c cli
				if _, ok := newParser(&c, only, nil, streams{nil, io.Discard, io.Discard}, &exitCode); !ok {
					b.Fatal("no model")
				}
			}
		})
	}
}
