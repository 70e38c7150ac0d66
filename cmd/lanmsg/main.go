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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-colorable"
	"github.com/rs/zerolog"
)

// cli holds the global flags; the commands are added to it by newParser.
type cli struct {
	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`
	LogLevel    string           `enum:"debug,info,warn,error" default:"info" placeholder:"LEVEL" help:"Log level: debug, info, warn or error (${default})."`
	LogFormat   string           `enum:"auto,console,json" default:"auto" placeholder:"FORMAT" help:"Log format on stderr: console, json, or auto (console on a terminal, json otherwise)."`
	ConfigDir   string           `type:"path" placeholder:"DIR" help:"Where this user's key and pinned servers are kept. Default: $XDG_CONFIG_HOME/lanmsg (~/.config/lanmsg)."`
}

// valueFlags are the global flags that take a value as the next argument
// (TestValueFlags keeps this list in step with cli).
var valueFlags = []string{"--log-level", "--log-format", "--config-dir"}

// command is one of lanmsg's commands, in the order help lists them.
type command struct {
	name, help string
	cmd        any
	tags       []string
}

// commands returns the commands, each with a fresh value to parse into.
func commands() []command {
	return []command{
		{"serve", "Receive messages and print them to stdout.", &serveCmd{}, nil},
		{"send", "Send messages to a lanmsg server (or the tutorial's Python server).", &sendCmd{}, nil},
		{"browse", "List the lanmsg servers on the LAN.", &browseCmd{}, nil},
		{"chat", "Chat with everyone else on a lanmsg server.", &chatCmd{}, nil},
		{"id", "Print this user's key fingerprint, then a short code to read aloud.", &idCmd{}, nil},
		{"forget", "Forget a server's pinned key, to accept its new one (after a reinstall) on the next contact.", &forgetCmd{}, nil},
		{"version", "Print the version, and the Go version and system it was built for.", &versionCmd{}, nil},
		{"usage", "Print the usage (lanmsg without a command).", &usageCmd{}, []string{`default:"1"`, `hidden:""`}},
	}
}

// chosenCommand returns the command args name, or "" when they name none:
// the first argument that is not a flag or a global flag's value.
func chosenCommand(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if slices.Contains(valueFlags, a) {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		return a
	}
	return ""
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
	// Building kong's model is most of a one-shot send's start-up (it
	// reflects over every flag of every command: BenchmarkKongNew), so a
	// command line that names a command gets a model of that command alone.
	// Anything that does not parse with it is parsed again with the whole
	// model, so errors and suggestions are the same as ever.
	var (
		c        cli
		kctx     *kong.Context
		code     int
		done     bool
		exitCode = -1
	)
	for _, only := range []string{chosenCommand(args), ""} {
		c = cli{}
		parser, ok := newParser(&c, only, l, streams{stdin, stdout, stderr}, &exitCode)
		if !ok {
			continue
		}
		var err error
		kctx, code, done, err = parse(parser, args, &exitCode)
		if err != nil && only != "" {
			continue
		}
		if err != nil {
			return report(parser.Stderr, usageError{err})
		}
		if done {
			return code
		}
		if kctx.Command() == "usage" {
			_, code, _, _ = parse(parser, []string{"--help"}, &exitCode)
			return code
		}
		break
	}
	if kctx == nil {
		_, _ = fmt.Fprintln(stderr, "lanmsg: internal error: no command line model")
		return 1
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

// newParser builds kong's parser for c with the command named only, or with
// every command when only is "" or names none. ok is false when only names no
// command.
func newParser(c *cli, only string, l lan, s streams, exitCode *int) (parser *kong.Kong, ok bool) {
	opts := []kong.Option{
		kong.Name("lanmsg"),
		kong.Description(description),
		kong.Vars{"version": versionString()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(s.out, s.err),
		kong.Exit(func(code int) { *exitCode = code; panic(exitPanic{}) }),
		kong.BindTo(s, (*streams)(nil)),
		kong.BindTo(l, (*lan)(nil)),
	}
	n := 0
	for _, cmd := range commands() {
		if only == "" || cmd.name == only {
			opts = append(opts, kong.DynamicCommand(cmd.name, cmd.help, "", cmd.cmd, cmd.tags...))
			n++
		}
	}
	if n == 0 {
		return nil, false
	}
	parser, err := kong.New(c, opts...)
	if err != nil {
		// The model is static: a bad one is a bug that every test sees.
		panic(fmt.Sprintf("lanmsg: command line model: %v", err))
	}
	return parser, true
}

// parse runs kong's parser. --help and --version come back as done with
// their exit code; a usage error comes back as err.
func parse(parser *kong.Kong, args []string, exitCode *int) (kctx *kong.Context, code int, done bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); !ok {
				panic(r)
			}
			kctx, code, done, err = nil, *exitCode, true, nil
		}
	}()
	kctx, err = parser.Parse(args)
	if err != nil {
		return nil, 0, false, err
	}
	return kctx, 0, false, nil
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
