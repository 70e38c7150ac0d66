package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadCreatesKeyOnceWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "lanmsg")
	id, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	key := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	b, _ := os.ReadFile(key)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file is not PEM PKCS#8:\n%s", b)
	}
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Created || again.Created {
		t.Errorf("Created: first %v, second %v; want true, false", id.Created, again.Created)
	}
	if again.Fingerprint != id.Fingerprint || !again.Key.Equal(id.Key) {
		t.Error("a second Load made another key")
	}
	fp, _ := FingerprintOf(id.Public())
	if fp != id.Fingerprint {
		t.Error("Fingerprint is not the fingerprint of the key")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".identity-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Processes starting at once on a new config dir must agree on one key.
func TestLoadRaceEndsWithOneKey(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := filepath.Join(t.TempDir(), "lanmsg")
		const n = 8
		ids := make([]*Identity, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ids[i], errs[i] = Load(dir)
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range n {
			if ids[i] != nil && ids[i].Created {
				created++
			}
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
			if ids[i].Fingerprint != ids[0].Fingerprint {
				t.Fatalf("round %d: loader %d got key %v, loader 0 %v", round, i, ids[i].Fingerprint, ids[0].Fingerprint)
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d loaders say they made the key, want 1", round, created)
		}
	}
}

func TestLoadRefusesKeyReadableByOthers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lanmsg")
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, KeyFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		var pe *PermissionError
		if !errors.As(err, &pe) || !errors.Is(err, ErrUnsafePermissions) || pe.Dir {
			t.Fatalf("mode %04o: %v, want a *PermissionError on the key", mode, err)
		}
		if !strings.Contains(err.Error(), key) || !strings.Contains(pe.Hint(), "chmod 600 "+key) {
			t.Errorf("mode %04o: error %q / hint %q should name the file and the fix", mode, err, pe.Hint())
		}
	}
	if err := os.Chmod(key, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadRefusesDirWritableByOthers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lanmsg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	var pe *PermissionError
	if !errors.As(err, &pe) || !pe.Dir || pe.Hint() != "run: chmod 700 "+dir {
		t.Fatalf("got %v, want a *PermissionError on the dir", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a key was written into a dir others may write to")
	}
}

func TestLoadRefusesABadKeyFile(t *testing.T) {
	for name, content := range map[string]string{
		"empty":   "",
		"garbage": "hello\n",
		"rsa-ish": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
		"not der": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		dir := filepath.Join(t.TempDir(), "lanmsg")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(dir, KeyFile)
		if err := os.WriteFile(key, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "move it away") {
			t.Errorf("%s: %v, want ErrBadKey naming the file and the way out", name, err)
		}
		if b, _ := os.ReadFile(key); string(b) != content {
			t.Errorf("%s: the bad key file was changed", name)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/x/config")
	d, err := DefaultDir()
	if err != nil || d != "/x/config/lanmsg" {
		t.Errorf("DefaultDir() = %q, %v; want /x/config/lanmsg", d, err)
	}
}
