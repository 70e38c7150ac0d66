//go:build linux

package netlab

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAvahiSideBySide: two avahi-daemons run at once, each with its own
// /run/avahi-daemon, where one shared directory made the second refuse to
// start ("Daemon already running"); and they find each other on the lab's LAN.
func TestAvahiSideBySide(t *testing.T) {
	if _, err := exec.LookPath("avahi-resolve-host-name"); err != nil {
		t.Skip("netlab: avahi-utils is not installed")
	}
	lab := Up(t, 2)
	env1 := lab.StartAvahi(1, "one")
	lab.StartAvahi(2, "two")

	cmd := lab.Command(1, "avahi-resolve-host-name", "-4", "two.local")
	cmd.Env = append(os.Environ(), env1...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), lab.Addr(2).String()) {
		t.Fatalf("host 1's avahi resolving two.local: %v: %s", err, out)
	}
}
