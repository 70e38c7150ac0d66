//go:build linux

package main

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

// pty is a pseudo-terminal: the test holds the master, a child gets the slave
// as its controlling terminal.
type pty struct {
	t      *testing.T
	master *os.File
	slave  *os.File

	mu      sync.Mutex
	out     []byte        // everything read from the master
	changed chan struct{} // closed and replaced when out grows or reading ends
	ended   bool
}

// openPTY opens a pseudo-terminal pair; both ends are closed when the test
// ends.
func openPTY(t *testing.T) *pty {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	// Non-blocking, so that reads go through the poller and Close ends them.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	name := "/dev/pts/" + strconv.Itoa(n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	p := &pty{t: t, master: master, slave: os.NewFile(uintptr(sfd), name), changed: make(chan struct{})}
	t.Cleanup(func() {
		p.slave.Close()
		p.master.Close()
	})
	go p.read()
	return p
}

// read copies what the child writes to the terminal into p.out, until the
// master reports an error: EIO once no process holds the slave open any more.
func (p *pty) read() {
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		p.mu.Lock()
		p.out = append(p.out, buf[:n]...)
		if err != nil {
			p.ended = true
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// text is what the terminal has shown so far.
func (p *pty) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.out)
}

// waitFor waits up to d for the terminal to show s, and returns everything
// shown so far.
func (p *pty) waitFor(s string, d time.Duration) string {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		out, ch, ended := string(p.out), p.changed, p.ended
		p.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		if ended {
			p.t.Fatalf("the terminal closed without showing %q; it showed:\n%s", s, out)
		}
		select {
		case <-ch:
		case <-timer.C:
			p.t.Fatalf("the terminal did not show %q within %v; it showed:\n%s", s, d, out)
		}
	}
}

// typeIn types s on the terminal's keyboard.
func (p *pty) typeIn(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil && !errors.Is(err, syscall.EIO) {
		p.t.Fatalf("typing %q: %v", s, err)
	}
}

// pickLine is a server in send's numbered list: "  2) beta  (198.18.0.12 port 5050)".
var pickLine = regexp.MustCompile(`(?m)^\s*(\d+)\) (.+?)  \((.*) port (\d+)\)  (\[[^\]]*\])\r?$`)

// TestPickerPTY: with several servers on the LAN and no --to, send asks which
// one on its controlling terminal, while stdin carries the messages; with no
// terminal, it refuses and says how to choose.
func TestPickerPTY(t *testing.T) {
	bin := labLanmsg(t)
	lab := netlab.Up(t, 3)
	labHostname(lab, 1, "labh1")
	labHostname(lab, 2, "labh2")
	alpha := startServe(t, lab, bin, 1, "labh1", "--name", "alpha")
	beta := startServe(t, lab, bin, 2, "labh2", "--name", "beta")
	alpha.ready()
	beta.ready()
	const input = "from pipe 1\nfrom pipe 2\n"

	t.Run("no terminal", func(t *testing.T) {
		// labCmd starts it in a session of its own without a controlling
		// terminal: /dev/tty cannot be opened.
		cmd := labCmd(lab, bin, 3, "", "send")
		cmd.Stdin = strings.NewReader(input)
		p := startLabProc(t, "send without a terminal", cmd)
		p.wantExit(15*time.Second, exitUsage)
		log := p.stderrText()
		for _, want := range []string{`"alpha"`, `"beta"`, "no terminal", "--to"} {
			if !strings.Contains(log, want) {
				t.Errorf("send's error does not mention %s:\n%s", want, log)
			}
		}
	})

	t.Run("pick on the terminal", func(t *testing.T) {
		tty := openPTY(t)
		cmd := labCmd(lab, bin, 3, "", "send")
		cmd.Stdin = strings.NewReader(input) // a pipe: the messages
		cmd.ExtraFiles = []*os.File{tty.slave}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3} // fd 3: ExtraFiles[0]
		p := startLabProc(t, "send with a terminal", cmd)
		tty.slave.Close() // the child has it; the master sees EIO when the child is gone

		shown := tty.waitFor("Send to which server?", 15*time.Second)
		choices := map[string]string{} // name -> number
		for _, m := range pickLine.FindAllStringSubmatch(shown, -1) {
			choices[m[2]] = m[1]
			want := map[string]string{"alpha": lab.Addr(1).String(), "beta": lab.Addr(2).String()}[m[2]]
			if m[3] != want || m[4] != strconv.Itoa(defaultPort) {
				t.Errorf("the list shows %q, want %s port %d", m[0], want, defaultPort)
			}
			if m[5] != "[new]" { // never used from h3 before: first contact
				t.Errorf("the list marks %q %s, want [new]", m[2], m[5])
			}
		}
		if len(choices) != 2 || choices["alpha"] == "" || choices["beta"] == "" {
			t.Fatalf("the terminal shows choices %v, want alpha and beta:\n%s", choices, shown)
		}
		if !strings.Contains(shown, "2 lanmsg servers found:") {
			t.Errorf("the terminal shows:\n%s", shown)
		}
		tty.typeIn(choices["beta"] + "\n")
		p.wantExit(15*time.Second, 0)
		if strings.Contains(tty.text(), "is not one of the choices") {
			t.Errorf("send rejected the choice:\n%s", tty.text())
		}
	})

	// ptyCmd starts lanmsg with args on host 3, with the pty as its
	// controlling terminal and stdin.
	ptyCmd := func(t *testing.T, name string, args ...string) (*pty, *labProc) {
		tty := openPTY(t)
		cmd := labCmd(lab, bin, 3, "", args...)
		cmd.Stdin = strings.NewReader(input)
		cmd.ExtraFiles = []*os.File{tty.slave}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
		p := startLabProc(t, name, cmd)
		tty.slave.Close()
		return tty, p
	}

	t.Run("chat asks on which server", func(t *testing.T) {
		tty, p := ptyCmd(t, "chat with a terminal", "chat")
		tty.waitFor("Chat on which server? [1-2, or q to cancel]: ", 15*time.Second)
		tty.typeIn("q\n")
		p.wantExit(15*time.Second, exitUsage)
	})

	t.Run("Ctrl-C at the picker", func(t *testing.T) {
		tty, p := ptyCmd(t, "send interrupted at the picker", "send")
		tty.waitFor("Send to which server?", 15*time.Second)
		tty.typeIn("\x03") // the terminal sends SIGINT
		p.wantExit(2*time.Second, exitInterrupted)
		if log := p.stderrText(); !strings.Contains(log, "lanmsg: interrupted") {
			t.Errorf("stderr:\n%s", log)
		}
	})

	t.Run("Ctrl-C while looking", func(t *testing.T) {
		tty, p := ptyCmd(t, "send interrupted while looking", "--log-level", "debug", "send", "--browse-timeout", "30s")
		p.waitLine(procStderr, 15*time.Second, "the start of the search", func(l string) bool { return strings.Contains(l, "looking for servers on the LAN") })
		tty.typeIn("\x03")
		p.wantExit(2*time.Second, exitInterrupted)
		if log := p.stderrText(); !strings.Contains(log, "lanmsg: interrupted") {
			t.Errorf("stderr:\n%s", log)
		}
		if strings.Contains(tty.text(), "which server?") {
			t.Errorf("the picker appeared after Ctrl-C:\n%s", tty.text())
		}
	})

	if got := alpha.stop(); len(got) != 0 {
		t.Errorf("alpha, not picked, received %q", got)
	}
	want := []string{"198.18.0.13 from pipe 1", "198.18.0.13 from pipe 2"}
	if got := messagesFrom(t, beta.stop()); !slices.Equal(got, want) {
		t.Errorf("beta, picked, received %q, want %q", got, want)
	}
}
