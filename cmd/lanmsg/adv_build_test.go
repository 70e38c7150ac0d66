//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdvBuildOtherUsersClone: the adversarial suite's build works in a clone
// that belongs to another user, where git refuses to say what the revision
// is ("dubious ownership") and a build that stamps it fails.
func TestAdvBuildOtherUsersClone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give a clone to another user")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/other\n\ngo 1.25\n",
		"main.go": "package main\n\nfunc main() {}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	const nobody = 65534
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}

	cmd := advBuildCommand(dir, filepath.Join(t.TempDir(), "lanmsg"))
	// Not this machine's settings: GOFLAGS (in the environment or go env's
	// file) may turn VCS stamping off already. Go's own default stamps.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "GOFLAGS=-buildvcs=auto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build in a clone owned by another user: %v\n%s", err, out)
	}
}
