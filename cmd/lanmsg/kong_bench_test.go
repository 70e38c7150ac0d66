package main

import (
	"io"
	"testing"

	"github.com/alecthomas/kong"
)

func BenchmarkKongNew(b *testing.B) {
	for b.Loop() {
		var c cli
		_, err := kong.New(&c, kong.Name("lanmsg"), kong.Description(description), kong.Vars{"version": versionString()},
			kong.ConfigureHelp(kong.HelpOptions{Compact: true}), kong.Writers(io.Discard, io.Discard))
		if err != nil {
			b.Fatal(err)
		}
	}
}
