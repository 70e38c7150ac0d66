package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// The bench mode measures lanmsg end to end on loopback and prints a table:
//
//   - server throughput: the real `lanmsg serve` (stdout to a file, text
//     format) loaded from pre-built frames written in large writes, timed from
//     the first connect to the last confirming close after !DISCONNECT; every
//     message is checked to be in the output file;
//   - the tutorial's Python server on the same loads, as the baseline;
//   - `lanmsg send` streaming stdin lines, and a one-shot send;
//   - many idle sessions: resident memory per session, and how long a new
//     client waits meanwhile;
//   - with -gobench FILE, the `go test -bench` results in FILE (transport
//     encode/decode, discovery in a namespaced LAN) are folded into the table.
//
// The server's CPU profile for each load can be saved with -profile DIR.

func init() {
	register("bench", "measure throughput, client, idle sessions and discovery; print a table", runBench)
}

type benchConfig struct {
	bin       string
	python    string
	tutorial  string
	runs      int
	sessions  int
	lines     int
	oneshots  int
	minclient string
	scale     float64
	gobench   string
	profile   string
	profSecs  int
	noPython  bool
	dir       string
	baseline  string
	loads     string
	absolute  bool
}

// load is one throughput scenario.
type load struct {
	name  string
	conns int
	msgs  int // per connection
	size  int // payload bytes
}

func (l load) total() int { return l.conns * l.msgs }

func runBench(args []string) error {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.bin, "bin", "bin/lanmsg", "the lanmsg binary to measure")
	fs.StringVar(&c.python, "python", "python3", "Python interpreter for the tutorial baseline")
	fs.StringVar(&c.tutorial, "tutorial", "cmd/lanmsg/testdata/tutorial_server.py", "the tutorial's server")
	fs.BoolVar(&c.noPython, "no-python", false, "skip the tutorial baseline")
	fs.IntVar(&c.runs, "runs", 5, "repetitions of each measurement (best and median are reported)")
	fs.IntVar(&c.sessions, "sessions", 10000, "idle sessions to hold open (0 skips)")
	fs.IntVar(&c.lines, "lines", 300000, "stdin lines `lanmsg send` streams (0 skips the client figures)")
	fs.IntVar(&c.oneshots, "oneshots", 20, "one-shot sends to time (0 skips)")
	fs.StringVar(&c.minclient, "minclient", "bin/lanmsg-minclient", "the one-shot send's reference, built from ./cmd/lanmsg-load/minclient")
	fs.Float64Var(&c.scale, "scale", 1, "multiply the throughput loads' message counts")
	fs.StringVar(&c.gobench, "gobench", "", "`go test -bench` output to fold into the table")
	fs.StringVar(&c.profile, "profile", "", "save a server CPU profile of each throughput load to this directory")
	fs.IntVar(&c.profSecs, "profile-seconds", 3, "length of each profile")
	fs.StringVar(&c.baseline, "baseline", "", "another lanmsg binary (an earlier version) to run the throughput loads against, for ratios in the same run")
	fs.StringVar(&c.loads, "loads", "", "run only the throughput loads whose name contains this (e.g. \"4 KiB\"; empty: all)")
	fs.BoolVar(&c.absolute, "absolute", true, "measure each throughput load alone before comparing it with the references")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(c.bin); err != nil {
		return fmt.Errorf("%w (build it first: just build, or go build -o bin/lanmsg ./cmd/lanmsg)", err)
	}
	raiseNofile()
	dir, err := os.MkdirTemp("", "lanmsg-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c.dir = dir

	t := &table{}
	t.machine(c.bin)

	loads := []load{
		{"32 B x 1 conn", 1, 200000, 32},
		{"32 B x 50 conns", 50, 4000, 32},
		{"4 KiB x 1 conn", 1, 20000, 4096},
	}
	loads = slices.DeleteFunc(loads, func(l load) bool { return !strings.Contains(l.name, c.loads) })
	for i := range loads {
		loads[i].msgs = max(1, int(float64(loads[i].msgs)*c.scale))
	}
	if c.absolute {
		t.section("Server throughput (lanmsg serve, stdout to a file, text format)")
	}
	for _, l := range loads {
		if !c.absolute {
			break
		}
		lanmsgRes, err := benchLanmsgLoad(&c, l)
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		row := lanmsgRes.row(l)
		if !c.noPython {
			py := benchPythonLoad(&c, l)
			row = append(row, py.baseline(l, lanmsgRes))
		}
		t.add(row...)
		if c.profile != "" {
			if err := profileLoad(&c, l); err != nil {
				return fmt.Errorf("profile %s: %w", l.name, err)
			}
		}
	}

	t.section("Against references in the same run (median throughput; ratio = lanmsg / reference)")
	for _, l := range loads {
		l.msgs *= 3 // runs of a few hundred milliseconds: long enough to compare
		starts := []starter{lanmsgStarter(c.bin, l), startSink}
		if c.baseline != "" {
			starts = append(starts, baselineStarter(c.baseline, l))
		}
		rs, err := benchLoads(&c, l, starts...)
		if err != nil {
			return fmt.Errorf("%s against the references: %w", l.name, err)
		}
		// CPU per message: less at the mercy of a busy machine than time.
		perMsg := func(r *result) float64 {
			return float64(r.cpu.Microseconds()) / float64(len(r.times)*l.total())
		}
		row := []string{l.name, fmt.Sprintf("%s msgs/s", si(float64(l.total())/rs[0].median().Seconds())),
			fmt.Sprintf("sink %s msgs/s: %.2fx", si(float64(l.total())/rs[1].median().Seconds()), rs[1].median().Seconds()/rs[0].median().Seconds()),
			fmt.Sprintf("server CPU %.2f µs/msg, sink %.2f", perMsg(rs[0]), perMsg(rs[1]))}
		if c.baseline != "" {
			row = append(row, fmt.Sprintf("%s %s msgs/s: %.2fx; CPU %.2f µs/msg", filepath.Base(c.baseline), si(float64(l.total())/rs[2].median().Seconds()), rs[2].median().Seconds()/rs[0].median().Seconds(), perMsg(rs[2])))
		}
		t.add(row...)
	}

	if c.lines > 0 {
		t.section("Client (lanmsg send --server, to lanmsg serve)")
		if err := benchStream(&c, t); err != nil {
			return fmt.Errorf("send from stdin: %w", err)
		}
	}
	if c.oneshots > 0 {
		t.section("One-shot send (process start to exit)")
		if err := benchOneShot(&c, t); err != nil {
			return fmt.Errorf("one-shot send: %w", err)
		}
	}
	if c.sessions > 0 {
		t.section(fmt.Sprintf("%d idle sessions on one server", c.sessions))
		if err := benchIdle(&c, t); err != nil {
			return fmt.Errorf("idle sessions: %w", err)
		}
	}
	if c.gobench != "" {
		if err := t.goBench(c.gobench); err != nil {
			return err
		}
	}
	t.print(os.Stdout)
	return nil
}

// ---- throughput ----

// streams builds, for each connection of l, the bytes it sends: its messages
// as back-to-back frames, then !DISCONNECT. Payloads are printable ASCII, so
// the text format prints them unchanged.
func streams(l load) [][]byte {
	out := make([][]byte, l.conns)
	for c := range out {
		frameLen := transport.HeaderSize + l.size
		b := make([]byte, 0, l.msgs*frameLen+transport.HeaderSize+len(transport.Disconnect))
		p := make([]byte, l.size)
		for i := range p {
			p[i] = 'a' + byte(i%26)
		}
		for m := range l.msgs {
			// Number the messages where the payload has room for it.
			tag := strconv.AppendInt(append(strconv.AppendInt([]byte("c"), int64(c), 10), " m"...), int64(m), 10)
			tag = append(tag, ' ')
			copy(p, tag)
			b = transport.AppendFrame(b, p)
		}
		out[c] = transport.AppendFrame(b, []byte(transport.Disconnect))
	}
	return out
}

// drive connects once per stream, writes each stream in large writes and
// waits for the server to close each connection. It returns the time from the
// first connect to the last close, and an error if any connection failed or
// was reset (not confirmed).
func drive(addr string, ss [][]byte, timeout time.Duration) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		last  time.Time
		errs  []error
		start = time.Now()
	)
	deadline := start.Add(timeout)
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := driveOne(addr, s, deadline)
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %d: %w", i, err))
			}
			if now.After(last) {
				last = now
			}
		}()
	}
	wg.Wait()
	return last.Sub(start), errors.Join(errs...)
}

func driveOne(addr string, s []byte, deadline time.Time) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = nc.Close() }()
	_ = nc.SetDeadline(deadline)
	// Go's Write writes the whole slice, each system call taking as much as
	// the socket buffer holds.
	if _, err := nc.Write(s); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// Delivery confirmation: the server closes after !DISCONNECT.
	if _, err := io.Copy(io.Discard, nc); err != nil {
		return fmt.Errorf("waiting for the close: %w", err)
	}
	return nil
}

// result holds the repeated measurements of one scenario.
type result struct {
	times []time.Duration
	cpu   time.Duration // server CPU over all runs
}

func (r *result) best() time.Duration { return slices.Min(r.times) }
func (r *result) median() time.Duration {
	s := slices.Clone(r.times)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *result) row(l load) []string {
	b, m := r.best(), r.median()
	total := float64(l.total())
	mb := total * float64(l.size) / 1e6
	var wall time.Duration
	for _, t := range r.times {
		wall += t
	}
	return []string{
		fmt.Sprintf("%s (%d msgs)", l.name, l.total()),
		fmt.Sprintf("%s msgs/s", si(total/b.Seconds())),
		fmt.Sprintf("%s msgs/s", si(total/m.Seconds())),
		fmt.Sprintf("%.0f MB/s", mb/b.Seconds()),
		fmt.Sprintf("server CPU %.0f%%", 100*r.cpu.Seconds()/wall.Seconds()),
	}
}

func benchLanmsgLoad(c *benchConfig, l load) (*result, error) {
	rs, err := benchLoads(c, l, lanmsgStarter(c.bin, l))
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// starter starts a server whose stdout goes to the file out.
type starter func(out string) (*server, error)

func lanmsgStarter(bin string, l load) starter {
	return func(out string) (*server, error) {
		n := strconv.Itoa(max(1024, 2*l.conns))
		return startServer(bin, out, "--max-sessions", n, "--max-sessions-per-host", n)
	}
}

// baselineStarter starts an earlier lanmsg, which may predate
// --max-sessions-per-host (a load of 50 connections is within its default).
func baselineStarter(bin string, l load) starter {
	return func(out string) (*server, error) {
		return startServer(bin, out, "--max-sessions", strconv.Itoa(max(1024, 2*l.conns)))
	}
}

// benchLoads runs load l c.runs times against each server, interleaved run
// by run (so that a busy moment of the machine falls on all of them alike),
// and returns a result for each.
func benchLoads(c *benchConfig, l load, starts ...starter) ([]*result, error) {
	ss := streams(l)
	rs := make([]*result, len(starts))
	for i := range rs {
		rs[i] = &result{}
	}
	for run := range c.runs {
		for i, start := range starts {
			out := filepath.Join(c.dir, fmt.Sprintf("serve-%d-%d.out", i, run))
			srv, err := start(out)
			if err != nil {
				return nil, err
			}
			cpu0, _ := cpuTime(srv.Pid())
			d, err := drive(srv.Addr, ss, 60*time.Second)
			cpu1, _ := cpuTime(srv.Pid())
			_, serr := srv.Stop()
			if err == nil && serr != nil {
				err = fmt.Errorf("server exit: %w", serr)
			}
			if err == nil {
				err = checkLines(out, l.total())
			}
			_ = os.Remove(out)
			if err != nil {
				return nil, fmt.Errorf("%w\nserver log:\n%s", err, tail(srv.Log.String(), 20))
			}
			rs[i].times = append(rs[i].times, d)
			rs[i].cpu += cpu1 - cpu0
		}
	}
	return rs, nil
}

func checkLines(out string, want int) error {
	n, err := countLines(out)
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("the output holds %d lines, want %d", n, want)
	}
	return nil
}

// profileLoad repeats l against one server for c.profSecs while taking a CPU
// profile of it from --debug-listen, and saves it as DIR/serve-NAME.pprof.
func profileLoad(c *benchConfig, l load) error {
	if err := os.MkdirAll(c.profile, 0o755); err != nil {
		return err
	}
	ss := streams(l)
	out := filepath.Join(c.dir, "profile.out")
	srv, err := startServer(c.bin, out)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(out) }()
	defer func() { _, _ = srv.Stop() }()
	type prof struct {
		b   []byte
		err error
	}
	done := make(chan prof, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.DebugAddr, c.profSecs))
		if err != nil {
			done <- prof{nil, err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		done <- prof{b, err}
	}()
	for {
		select {
		case p := <-done:
			if p.err != nil {
				return p.err
			}
			name := strings.NewReplacer(" ", "", "x", "-").Replace(l.name)
			return os.WriteFile(filepath.Join(c.profile, "serve-"+name+".pprof"), p.b, 0o644)
		default:
		}
		if _, err := drive(srv.Addr, ss, 60*time.Second); err != nil {
			return err
		}
		if fi, err := os.Stat(out); err == nil && fi.Size() > 4<<30 {
			// Keep the disk: restart the output (the server writes at its
			// offset, so the file stays sparse).
			_ = os.Truncate(out, 0)
		}
	}
}

// ---- the tutorial's Python server ----

type pyResult struct {
	d        time.Duration
	got      int
	err      error
	trace    string
	timedOut bool
	active   time.Duration // from the first connect to the last output it printed
}

// benchPythonLoad runs l once against the tutorial's server. It may lose or
// garble data (its recv calls can return short, which desynchronises the
// stream), hang or die: every outcome is reported, bounded by a timeout.
func benchPythonLoad(c *benchConfig, l load) *pyResult {
	res := &pyResult{}
	out := filepath.Join(c.dir, "py.out")
	errf := filepath.Join(c.dir, "py.err")
	defer func() { _ = os.Remove(out) }()
	defer func() { _ = os.Remove(errf) }()
	addr, cmd, err := startPython(c, out, errf)
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		_ = cmd.Process.Kill() // by PID: the process started above
		_ = cmd.Wait()
	}()
	// A watchdog: when the output stops growing for stallAfter, the server
	// has died or hung; kill it (by PID) so that the connections end.
	const stallAfter = 3 * time.Second
	start := time.Now()
	var lastGrowth time.Time
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var size int64 = -1
		lastGrowth = start
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if fi, err := os.Stat(out); err == nil && fi.Size() != size {
				size, lastGrowth = fi.Size(), time.Now()
			}
			if time.Since(lastGrowth) > stallAfter {
				res.timedOut = true
				_ = cmd.Process.Kill()
				return
			}
		}
	}()
	res.d, res.err = drive(addr, streams(l), 60*time.Second)
	close(stop)
	<-watched
	if errors.Is(res.err, os.ErrDeadlineExceeded) {
		res.timedOut = true
	}
	res.active = lastGrowth.Sub(start)
	// Give its output a moment to land; it flushes each print.
	time.Sleep(100 * time.Millisecond)
	res.got, _ = countPyMessages(out)
	if b, _ := os.ReadFile(errf); len(b) > 0 {
		res.trace = lastLine(string(b))
	}
	return res
}

func startPython(c *benchConfig, out, errf string) (string, *exec.Cmd, error) {
	fo, err := os.Create(out)
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = fo.Close() }()
	fe, err := os.Create(errf)
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = fe.Close() }()
	cmd := exec.Command(c.python, c.tutorial, "127.0.0.1", "0")
	cmd.Stdout, cmd.Stderr = fo, fe
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			_, addr, found := strings.Cut(string(line), "listening on ")
			if !found {
				break
			}
			return strings.TrimSpace(addr), cmd, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return "", nil, errors.New("the tutorial server printed no ready line")
}

// countPyMessages counts the message lines the tutorial server printed:
// "[('127.0.0.1', PORT)] : MESSAGE", not counting !DISCONNECT and its
// "Disconnected." lines.
func countPyMessages(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "[(") {
			continue
		}
		_, msg, ok := strings.Cut(line, ")] : ")
		if ok && msg != transport.Disconnect && msg != "Disconnected." {
			n++
		}
	}
	return n, sc.Err()
}

func (p *pyResult) baseline(l load, lanmsg *result) string {
	want := l.total()
	switch {
	case p.got != want || p.timedOut || p.err != nil && p.got != want:
		s := fmt.Sprintf("tutorial server lost data: printed %d of %d messages", p.got, want)
		if p.timedOut {
			s += ", then hung (killed after 3 s without output)"
		}
		if p.got > 0 && p.active >= time.Second { // shorter spans are below the watchdog's resolution
			s += fmt.Sprintf("; until then %s msgs/s (lanmsg %.0fx)", si(float64(p.got)/p.active.Seconds()),
				float64(want)/lanmsg.median().Seconds()/(float64(p.got)/p.active.Seconds()))
		}
		if p.trace != "" {
			s += "; " + p.trace
		}
		return s
	case p.err != nil:
		return "error: " + p.err.Error()
	}
	rate := float64(want) / p.d.Seconds()
	return fmt.Sprintf("tutorial server %s msgs/s; lanmsg %.0fx", si(rate), p.d.Seconds()/lanmsg.median().Seconds())
}

// ---- the client ----

// benchStream times `lanmsg send` streaming stdin, plain and with receipts
// (the two-way extension, which must cost under 20% of the plain rate).
func benchStream(c *benchConfig, t *table) error {
	in := filepath.Join(c.dir, "lines.txt")
	var b bytes.Buffer
	for i := range c.lines {
		fmt.Fprintf(&b, "line %07d abcdefghijklmnopqrstu\n", i) // 32 bytes + newline
	}
	if err := os.WriteFile(in, b.Bytes(), 0o644); err != nil {
		return err
	}
	defer func() { _ = os.Remove(in) }()
	plain, err := benchStreamRuns(c, in, nil)
	if err != nil {
		return err
	}
	receipts, err := benchStreamRuns(c, in, []string{"--receipts"})
	if err != nil {
		return err
	}
	n := float64(c.lines)
	t.add(fmt.Sprintf("send: %d stdin lines of 32 B", c.lines),
		si(n/plain.best().Seconds())+" lines/s", si(n/plain.median().Seconds())+" lines/s", "",
		fmt.Sprintf("client %.0f%%", 100*plain.clientShare))
	t.add(fmt.Sprintf("send --receipts: %d stdin lines of 32 B", c.lines),
		si(n/receipts.best().Seconds())+" lines/s", si(n/receipts.median().Seconds())+" lines/s", "",
		fmt.Sprintf("receipts cost %.0f%% of the plain median rate", 100*(1-plain.median().Seconds()/receipts.median().Seconds())))
	return nil
}

// streamResult is the runs of one streaming variant.
type streamResult struct {
	result
	clientShare float64 // client CPU time over wall time
}

func benchStreamRuns(c *benchConfig, in string, extra []string) (*streamResult, error) {
	r := &streamResult{}
	var clientCPU time.Duration
	for run := range c.runs {
		out := filepath.Join(c.dir, fmt.Sprintf("stream-%d.out", run))
		srv, err := startServer(c.bin, out)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(c.bin, append([]string{"send", "--server", srv.Addr, "--log-format", "json"}, extra...)...)
		cmd.Stdin = f
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err = cmd.Run()
		d := time.Since(start)
		_ = f.Close()
		if _, serr := srv.Stop(); err == nil && serr != nil {
			err = serr
		}
		if err == nil {
			err = checkLines(out, c.lines)
		}
		_ = os.Remove(out)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, stderr.String())
		}
		if ps := cmd.ProcessState; ps != nil {
			clientCPU += ps.UserTime() + ps.SystemTime()
		}
		r.times = append(r.times, d)
	}
	var wall time.Duration
	for _, d := range r.times {
		wall += d
	}
	r.clientShare = clientCPU.Seconds() / wall.Seconds()
	return r, nil
}

func benchOneShot(c *benchConfig, t *table) error {
	// Both ends keep their keys and pins in a directory of the run's own,
	// never in the user's config dir.
	cfg, err := os.MkdirTemp(c.dir, "config")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(cfg) }()
	env := append(os.Environ(), "XDG_CONFIG_HOME="+cfg)
	if _, err := os.Stat(c.minclient); err != nil {
		return fmt.Errorf("the minimal client, the one-shot send's reference: %w (build it with: go build -o %s ./cmd/lanmsg-load/minclient; 'just bench' does; or skip with -oneshots 0)", err, c.minclient)
	}
	for _, to := range []struct {
		row   string
		start func(out string) (*server, error)
	}{
		// A lanmsg server: send speaks TLS with it (after a first contact
		// that pins its key, not timed).
		{"send --server ADDR hello, TLS to lanmsg serve", func(out string) (*server, error) {
			return startServerEnv(c.bin, out, env)
		}},
		// A plain server, as the tutorial's: send's TLS attempt is
		// refused, and it sends in clear.
		{"send --server ADDR hello, to a plain server (the sink)", startSink},
	} {
		out := filepath.Join(c.dir, "oneshot.out")
		srv, err := to.start(out)
		if err != nil {
			return err
		}
		send := func() *exec.Cmd {
			cmd := exec.Command(c.bin, "send", "--server", srv.Addr, "hello")
			cmd.Env = env
			return cmd
		}
		if err := send().Run(); err != nil { // the first contact
			_, _ = srv.Stop()
			return fmt.Errorf("first send: %w", err)
		}
		// lanmsg and the minimal client in turn, so that a busy moment of
		// the machine falls on both alike.
		var ds, refs []time.Duration
		for range c.oneshots {
			for _, cmd := range []*exec.Cmd{send(), exec.Command(c.minclient, srv.Addr, "hello")} {
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					_, _ = srv.Stop()
					return fmt.Errorf("%s: %w: %s", cmd.Args[0], err, stderr.String())
				}
				if cmd.Args[0] == c.bin {
					ds = append(ds, time.Since(start))
				} else {
					refs = append(refs, time.Since(start))
				}
			}
		}
		if _, err := srv.Stop(); err != nil {
			return err
		}
		err = checkLines(out, 2*c.oneshots+1)
		_ = os.Remove(out)
		if err != nil {
			return err
		}
		slices.Sort(ds)
		slices.Sort(refs)
		t.add(to.row, ms(ds[0]), ms(ds[len(ds)/2]), "",
			fmt.Sprintf("%d runs; minimal Go client %s median: %.2fx", len(ds), ms(refs[len(refs)/2]), float64(ds[len(ds)/2])/float64(refs[len(refs)/2])))
	}
	return nil
}

// ---- idle sessions ----

func benchIdle(c *benchConfig, t *table) error {
	out := filepath.Join(c.dir, "idle.out")
	srv, err := startServer(c.bin, out, "--max-sessions", strconv.Itoa(2*c.sessions), "--max-sessions-per-host", strconv.Itoa(2*c.sessions))
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(out) }()
	stopped := false
	defer func() {
		if !stopped {
			_, _ = srv.Stop()
		}
	}()
	// One session first, so that the baseline has the per-server state a
	// session creates (buffer pools, the first goroutines).
	if err := probe(srv.Addr); err != nil {
		return err
	}
	if _, err := srv.State(true); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	base, err := procStatus(srv.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	st0, _ := srv.State(true)

	conns := make([]net.Conn, 0, c.sessions)
	defer func() {
		for _, nc := range conns {
			_ = nc.Close()
		}
	}()
	openStart := time.Now()
	for range c.sessions {
		nc, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("after %d connections: %w", len(conns), err)
		}
		conns = append(conns, nc)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := srv.State(false)
		if err != nil {
			return err
		}
		if int(st["sessions"]) >= c.sessions {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %v sessions of %d", st["sessions"], c.sessions)
		}
	}
	openTime := time.Since(openStart)
	st1, err := srv.State(true)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	rss, err := procStatus(srv.Pid(), "VmRSS")
	if err != nil {
		return err
	}

	var ds []time.Duration
	for range max(c.oneshots, 5) {
		start := time.Now()
		if err := probe(srv.Addr); err != nil {
			return fmt.Errorf("new client while %d sessions are open: %w", c.sessions, err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)

	n := float64(c.sessions)
	t.add("resident memory per idle session (VmRSS)", fmt.Sprintf("%.1f KiB", float64(rss-base)/n/1024), "", "",
		fmt.Sprintf("RSS %.0f -> %.0f MiB; Go heap %.1f KiB/session; %d opened in %v",
			float64(base)/(1<<20), float64(rss)/(1<<20), (st1["heap_bytes"]-st0["heap_bytes"])/n/1024, c.sessions, openTime.Round(time.Millisecond)))
	t.add("new client served meanwhile (connect, 1 msg, confirmed)", ms(ds[0]), ms(ds[len(ds)/2]), "", fmt.Sprintf("%d probes", len(ds)))

	for _, nc := range conns {
		_ = nc.Close()
	}
	conns = nil
	stopped = true
	_, err = srv.Stop()
	return err
}

// probe is one client session: connect, one message, !DISCONNECT, wait for
// the confirming close.
func probe(addr string) error {
	b := transport.AppendFrame(nil, []byte("probe"))
	b = transport.AppendFrame(b, []byte(transport.Disconnect))
	return driveOne(addr, b, time.Now().Add(10*time.Second))
}

// ---- the table ----

type table struct {
	head []string
	rows [][]string
}

func (t *table) machine(bin string) {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	gov := runtime.Version()
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		gov = bi.GoVersion
	}
	t.head = append(t.head,
		fmt.Sprintf("machine: %s, %d cores (GOMAXPROCS %d), %s/%s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("lanmsg built with %s; %s", gov, time.Now().UTC().Format("2006-01-02")))
}

func (t *table) section(name string) { t.rows = append(t.rows, []string{"**" + name + "**"}) }
func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// goBench folds `go test -bench` output into the table: every benchmark
// line, with its custom metrics.
func (t *table) goBench(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pkg := ""
	header := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = v
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if !header {
			t.section("Go benchmarks (go test -bench)")
			header = true
		}
		name := strings.TrimPrefix(pkg, "github.com/lanmsg/lanmsg/") + " " + f[0]
		var metrics []string
		for i := 2; i+1 < len(f); i += 2 {
			metrics = append(metrics, f[i]+" "+f[i+1])
		}
		t.add(name, strings.Join(metrics, ", "))
	}
	return nil
}

func (t *table) print(w io.Writer) {
	for _, h := range t.head {
		_, _ = fmt.Fprintln(w, h)
	}
	_, _ = fmt.Fprintln(w)
	_, _ = fmt.Fprintln(w, "| measurement | best | median | MB/s (best) | notes / tutorial server |")
	_, _ = fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, r := range t.rows {
		cells := slices.Clone(r)
		switch len(cells) {
		case 1:
			cells = append(cells, "", "", "", "")
		case 2: // go benchmarks: metrics in one cell
			cells = []string{cells[0], cells[1], "", "", ""}
		}
		for len(cells) < 5 {
			cells = append(cells, "")
		}
		if len(cells) > 5 {
			cells = append(cells[:4], strings.Join(cells[4:], "; "))
		}
		_, _ = fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// ---- formatting ----

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
