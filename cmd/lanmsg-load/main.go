// Command lanmsg-load drives a real `lanmsg serve` process for soak tests and
// benchmarks: it starts the server on loopback, loads it from pre-built
// frames, and reports what it measured.
//
//	lanmsg-load MODE [flags]
//
// Each mode lives in its own file and registers itself in init.
package main

import (
	"fmt"
	"os"
	"sort"
)

// mode is one thing lanmsg-load can do.
type mode struct {
	summary string
	run     func(args []string) error
}

var modes = map[string]mode{}

func register(name, summary string, run func(args []string) error) {
	modes[name] = mode{summary, run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lanmsg-load MODE [flags]   (MODE -h for its flags)\n\nmodes:")
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, modes[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		os.Exit(2)
	}
	m, ok := modes[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "lanmsg-load: unknown mode %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := m.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "lanmsg-load: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
