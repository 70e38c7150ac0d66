package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/rs/zerolog"
)

// Helper processes: the test binary re-executed inside a lab host (never in the machine's own
// namespace) with LANMSG_HELPER_ROLE set. They print one line per event on stdout:
//
//	READY <Service json>   (advertise: the advertisement is being answered)
//	FOUND <Service json>   (browse: one instance)
//	DONE                   (browse: timeout reached)
const helperRole = "LANMSG_HELPER_ROLE"

func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperRole)
	if role == "" {
		t.Skip("not a test: the helper process for lab tests")
	}
	log := zerolog.New(os.Stderr).Level(zerolog.DebugLevel).With().Timestamp().Str("role", role).Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	switch role {
	case "advertise":
		port, _ := strconv.Atoi(os.Getenv("LANMSG_HELPER_PORT"))
		a, err := Advertise(ctx, AdvertiseConfig{
			Instance: os.Getenv("LANMSG_HELPER_INSTANCE"), Hostname: os.Getenv("LANMSG_HELPER_HOSTNAME"),
			Port: port, TXT: map[string]string{"ver": "test"}, Log: &log,
		})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Print("READY ")
		out.Encode(a.Service())
		io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		if err := a.Close(); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("CLOSED")
	case "browse":
		d, _ := time.ParseDuration(os.Getenv("LANMSG_HELPER_TIMEOUT"))
		bctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := Browse(bctx, BrowseConfig{Log: &log}, func(s Service) {
			fmt.Print("FOUND ")
			out.Encode(s)
		})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("DONE")
	case "hashicorp-lookup":
		// A Go program that uses hashicorp/mdns's client must find lanmsg servers.
		entries := make(chan *mdns.ServiceEntry, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for e := range entries {
				fmt.Printf("ENTRY %s %s %v %d %q\n", e.Name, e.Host, e.AddrV4, e.Port, e.InfoFields)
			}
		}()
		params := mdns.DefaultParams(ServiceType)
		params.Entries = entries
		params.Timeout = 3 * time.Second
		params.DisableIPv6 = true
		params.Logger = stdlog.New(os.Stderr, "hashicorp/mdns: ", 0)
		if err := mdns.Query(params); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		close(entries)
		<-done
		fmt.Println("DONE")
	default:
		fmt.Println("ERROR unknown role", role)
		os.Exit(2)
	}
	os.Exit(0)
}

// helper is a running helper process.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startHelper starts cmd (a lab.Command or lab.CommandAs of os.Args[0]) in the given role.
func startHelper(t *testing.T, cmd *exec.Cmd, role string, env ...string) *helper {
	t.Helper()
	cmd.Args = append(cmd.Args, "-test.run=^TestHelperProcess$")
	cmd.Env = append(append(os.Environ(), helperRole+"="+role), env...)
	cmd.Stderr = testWriter{t, role}
	return startProc(t, cmd, false)
}

// startProc starts cmd, delivering its stdout lines (and stderr lines too if both) to next.
// At cleanup its stdin is closed and it gets 5 s to exit before it is killed by PID.
func startProc(t *testing.T, cmd *exec.Cmd, both bool) *helper {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	if both {
		cmd.Stderr = pw
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	pw.Close()
	h := &helper{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1000)}
	go func() {
		defer close(h.lines)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case h.lines <- sc.Text():
			default: // nobody is reading any more
			}
		}
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			h.cmd.Process.Kill() // our own child, by PID
			<-done
		}
	})
	return h
}

type testWriter struct {
	t    *testing.T
	role string
}

func (w testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.role + ": " + l)
	}
	return len(p), nil
}

// next returns the next line starting with one of prefixes (other lines are logged), failing
// on ERROR, exit, or timeout.
func (h *helper) next(d time.Duration, prefixes ...string) string {
	h.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				h.t.Fatalf("helper exited before printing %v", prefixes)
			}
			if strings.HasPrefix(l, "ERROR") {
				h.t.Fatalf("helper: %s", l)
			}
			for _, p := range prefixes {
				if strings.HasPrefix(l, p) {
					return l
				}
			}
			h.t.Log("helper: " + l)
		case <-deadline:
			h.t.Fatalf("helper printed no %v within %v", prefixes, d)
		}
	}
}

func decodeService(t *testing.T, line string) Service {
	t.Helper()
	_, js, _ := strings.Cut(line, " ")
	var s Service
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
	return s
}

// readyService waits for an advertise helper's READY line.
func (h *helper) ready() Service {
	h.t.Helper()
	return decodeService(h.t, h.next(15*time.Second, "READY"))
}

// collect reads a browse helper's FOUND lines until DONE.
func (h *helper) collect(d time.Duration) map[string]Service {
	h.t.Helper()
	got := map[string]Service{}
	for {
		l := h.next(d+10*time.Second, "FOUND", "DONE")
		if l == "DONE" {
			return got
		}
		s := decodeService(h.t, l)
		if _, dup := got[s.Instance]; dup {
			h.t.Errorf("instance %q reported twice", s.Instance)
		}
		got[s.Instance] = s
	}
}
