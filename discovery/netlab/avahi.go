//go:build linux

package netlab

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartAvahi runs a private D-Bus system bus and an avahi-daemon (IPv4, eth0 only, host name
// hostName) on host i, and returns the environment (DBUS_SYSTEM_BUS_ADDRESS) that avahi-publish
// and avahi-browse need. It skips the test if avahi-daemon or dbus-daemon is not installed.
// Both daemons are stopped, by PID, when the test ends.
//
// avahi-daemon keeps its pid file and socket in /run/avahi-daemon, which network namespaces
// share: a second daemon there refuses to start ("Daemon already running"). So each one runs
// in a mount namespace of its own, where a fresh directory of the test's is mounted over
// /run/avahi-daemon, and any number can run at once, from any number of test processes.
func (l *Lab) StartAvahi(i int, hostName string) []string {
	t := l.t
	t.Helper()
	for _, bin := range []string{"/usr/sbin/avahi-daemon", "dbus-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("netlab: %s is not installed", bin)
		}
	}
	d := t.TempDir()
	run := filepath.Join(d, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	bus := filepath.Join(d, "bus")
	busConf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=` + bus + `</listen>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/></policy>
<auth>EXTERNAL</auth></busconfig>
`
	avahiConf := "[server]\nhost-name=" + hostName + "\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\nenable-dbus=yes\n" +
		"[publish]\npublish-workstation=no\npublish-hinfo=no\n[reflector]\n[rlimits]\n"
	for name, content := range map[string]string{"bus.conf": busConf, "avahi.conf": avahiConf} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			t.Fatalf("netlab: %v", err)
		}
	}
	if err := os.MkdirAll("/run/avahi-daemon", 0o755); err != nil { // the mount point
		t.Fatalf("netlab: %v", err)
	}

	dbus := l.Command(i, "dbus-daemon", "--nofork", "--print-address", "--config-file="+filepath.Join(d, "bus.conf"))
	l.startDaemon(dbus, "dbus-daemon", true, "unix:")
	env := []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus}

	avahi := l.Command(i, "unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /run/avahi-daemon && exec "$@"`, run,
		"/usr/sbin/avahi-daemon", "-f", filepath.Join(d, "avahi.conf"), "--no-chroot", "--no-drop-root", "--no-rlimits")
	avahi.Env = append(os.Environ(), env...)
	l.startDaemon(avahi, "avahi-daemon", false, "Server startup complete")
	return env
}

// startDaemon starts cmd and waits for a line containing ready on its stdout (or stderr),
// logging its output; cmd is terminated by PID when the test ends.
func (l *Lab) startDaemon(cmd *exec.Cmd, name string, stdout bool, ready string) {
	t := l.t
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	if stdout {
		cmd.Stdout = pw
	} else {
		cmd.Stderr = pw
	}
	if err := cmd.Start(); err != nil {
		_ = pw.Close()
		_ = pr.Close()
		t.Fatalf("netlab: start %s: %v", name, err)
	}
	_ = pw.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = pr.Close()
	})
	readyCh := make(chan struct{})
	var mu sync.Mutex
	var tail []string
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if !signalled {
				mu.Lock()
				tail = append(tail, line)
				mu.Unlock()
			}
			if !signalled && strings.Contains(line, ready) {
				signalled = true
				close(readyCh)
			}
		}
	}()
	select {
	case <-readyCh:
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("netlab: %s exited before it was ready: %s", name, strings.Join(tail, "\n"))
	case <-time.After(15 * time.Second):
		t.Fatalf("netlab: %s not ready after 15s", name)
	}
	t.Logf("netlab: %s ready (pid %d)", name, cmd.Process.Pid)
}

// String describes the lab (for logs).
func (l *Lab) String() string { return fmt.Sprintf("lab %s (%d hosts)", l.prefix, l.n) }
