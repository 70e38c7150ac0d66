// Command lanmsg is a zero-config LAN messaging service: `lanmsg serve`
// prints the messages that `lanmsg send` sends it, over the length-header
// protocol of the classic Python socket tutorial.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-colorable"
	"github.com/rs/zerolog"
)

// cli is the whole command line.
type cli struct {
	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`
	LogLevel    string           `enum:"debug,info,warn,error" default:"info" placeholder:"LEVEL" help:"Log level: debug, info, warn or error (${default})."`
	LogFormat   string           `enum:"auto,console,json" default:"auto" placeholder:"FORMAT" help:"Log format on stderr: console, json, or auto (console on a terminal, json otherwise)."`
	ConfigDir   string           `type:"path" placeholder:"DIR" help:"Where this user's key and pinned servers are kept. Default: $XDG_CONFIG_HOME/lanmsg (~/.config/lanmsg)."`

	Serve   serveCmd   `cmd:"" help:"Receive messages and print them to stdout."`
	Send    sendCmd    `cmd:"" help:"Send messages to a lanmsg server (or the tutorial's Python server)."`
	Browse  browseCmd  `cmd:"" help:"List the lanmsg servers on the LAN."`
	Chat    chatCmd    `cmd:"" help:"Chat with everyone else on a lanmsg server."`
	ID      idCmd      `cmd:"" name:"id" help:"Print this user's key fingerprint, then a short code to read aloud."`
	Forget  forgetCmd  `cmd:"" help:"Forget a server's pinned key, to accept its new one (after a reinstall) on the next contact."`
	Version versionCmd `cmd:"" name:"version" help:"Print the version, and the Go version and system it was built for."`
	Usage   usageCmd   `cmd:"" default:"1" hidden:"" help:"Print the usage (lanmsg without a command)."`
}

// usageCmd is what lanmsg does without a command: say what it can do, as
// --help does (see runWith).
type usageCmd struct{}

const description = `lanmsg: messages across the LAN, with no address to type.

A server prints what clients send it. The wire format is the classic Python
socket tutorial's (a 64-byte length header, then the UTF-8 message), so its
client and server work with lanmsg too.

  lanmsg serve                  # on one machine
  lanmsg send "hello"           # on another: finds the server by itself
  lanmsg browse                 # lists the servers on the LAN
  lanmsg chat                   # a chat room on the server
  lanmsg id                     # this user's key fingerprint

Exit codes: 0 success, 1 error, 2 bad usage, 3 server unreachable or none found,
4 delivery not confirmed, 130 interrupted.`

func main() {
	// zerolog keeps its time format in a global: set it here, once, for the
	// process's one logger.
	zerolog.TimeFieldFormat = time.RFC3339Nano
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run parses args, runs the chosen command over the real LAN and returns the
// exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(mdnsLAN{}, args, stdin, stdout, stderr)
}

// streams are the process's standard streams, injected for tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// runWith runs lanmsg with l for mDNS.
func runWith(l lan, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c cli
	exitCode := -1
	parser, err := kong.New(&c,
		kong.Name("lanmsg"),
		kong.Description(description),
		kong.Vars{"version": versionString()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code; panic(exitPanic{}) }),
		kong.BindTo(streams{stdin, stdout, stderr}, (*streams)(nil)),
		kong.BindTo(l, (*lan)(nil)),
	)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "lanmsg: internal error: %v\n", err)
		return 1
	}

	kctx, code, done := parse(parser, args, &exitCode)
	if done {
		return code
	}
	if kctx.Command() == "usage" {
		_, code, _ = parse(parser, []string{"--help"}, &exitCode)
		return code
	}

	log := newLogger(stderr, c.LogLevel, c.LogFormat)
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, the next one ends the process at once. Stop
	// catching signals before the command sees ctx end: otherwise a second
	// signal sent once the command has reacted to the first (logged
	// "shutting down") can land before stop and be swallowed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-sigCtx.Done(); stop(); cancel() }()

	kctx.BindTo(ctx, (*context.Context)(nil))
	kctx.Bind(log)
	kctx.Bind(configDir(c.ConfigDir))
	if err := kctx.Run(); err != nil {
		if ctx.Err() != nil {
			// Interrupted: whatever went wrong after that is its
			// consequence, not news.
			_, _ = fmt.Fprintln(stderr, "lanmsg: interrupted")
			return exitInterrupted
		}
		return report(stderr, err)
	}
	return 0
}

// exitPanic unwinds kong's Exit (for --help and --version) back to run.
type exitPanic struct{}

// parse runs kong's parser, turning --help, --version and usage errors into
// an exit code.
func parse(parser *kong.Kong, args []string, exitCode *int) (kctx *kong.Context, code int, done bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); !ok {
				panic(r)
			}
			kctx, code, done = nil, *exitCode, true
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		return nil, report(parser.Stderr, usageError{err}), true
	}
	return kctx, 0, false
}

// report tells the person what went wrong and returns the exit code.
func report(w io.Writer, err error) int {
	var ce *cliError
	if !errors.As(err, &ce) {
		var ue usageError
		if errors.As(err, &ue) {
			ce = &cliError{code: exitUsage, err: ue.err, hint: "run 'lanmsg --help', or 'lanmsg COMMAND --help' for a command"}
		} else {
			ce = &cliError{code: exitFailure, err: err}
		}
	}
	_, _ = fmt.Fprintf(w, "lanmsg: error: %v\n", ce.err)
	if ce.hint != "" {
		_, _ = fmt.Fprintf(w, "lanmsg: hint: %s\n", ce.hint)
	}
	return ce.code
}

// Exit codes.
const (
	exitFailure     = 1 // anything else
	exitUsage       = 2 // bad flags, arguments or input
	exitUnreachable = 3 // could not connect to a server, or none found
	exitUnconfirmed = 4 // connected, but delivery was not confirmed
	// exitIdentity (5, pin.go): the server's key conflicts with the pin, or
	// TLS was required and not possible; nothing was sent.

	exitInterrupted = 130 // SIGINT or SIGTERM ended a command that was not done (128+SIGINT, as shells report it)
)

// cliError is an error for the person at the terminal, with an exit code
// and, where it helps, a hint.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// newLogger builds the one logger of the process: console output on a
// terminal, JSON otherwise, on stderr.
func newLogger(w io.Writer, level, format string) *zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "console"
		}
	}
	if format == "console" {
		tty := isTerminal(w)
		if f, ok := w.(*os.File); ok && tty {
			// Windows consoles need the colour codes translated (elsewhere
			// this returns f itself).
			w = colorable.NewColorable(f)
		}
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !tty}
	}
	log := zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	return &log
}
