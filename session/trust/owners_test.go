package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestNameOwners(t *testing.T) {
	dir := t.TempDir()
	alice, mallory := fpOf("alice"), fpOf("mallory")
	o, err := NameOwnersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if isNew, err := o.Claim("alice", alice); !isNew || err != nil {
		t.Fatalf("first claim: %v, %v", isNew, err)
	}
	if isNew, err := o.Claim("alice", alice); isNew || err != nil {
		t.Fatalf("claim again by the owner: %v, %v", isNew, err)
	}
	for _, name := range []string{"alice", "ALICE", "\u0430lice", "alice "} {
		_, err := o.Claim(name, mallory)
		var oe *NameOwnedError
		if !errors.As(err, &oe) || !errors.Is(err, ErrNameOwned) || oe.Owned != "alice" || oe.Owner != alice {
			t.Errorf("Claim(%+q) by another key: %v, want a *NameOwnedError for alice", name, err)
		}
	}
	if _, err := o.Claim("ali\u200bce", mallory); err == nil {
		t.Error("a name with a zero-width space was claimed")
	}
	if _, err := o.Claim("bob", Fingerprint{}); err == nil {
		t.Error("a claim without a key (a plain session) succeeded")
	}
	if owned, fp, ok := o.Owner("Alice"); !ok || owned != "alice" || fp != alice {
		t.Errorf("Owner(Alice) = %q, %v, %v", owned, fp, ok)
	}
	if _, _, ok := o.Owner("bob"); ok {
		t.Error("bob has an owner")
	}
	if _, err := o.Claim("mallory", mallory); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Claim("#1 fan", mallory); err != nil {
		t.Fatal(err)
	}

	// A server restarted reads the same owners.
	again, err := NameOwnersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Claim("Alice", mallory); !errors.Is(err, ErrNameOwned) {
		t.Errorf("after a restart: %v, want ErrNameOwned", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ChatNamesFile))
	if _, owner, ok := again.Owner("#1 fan"); !ok || owner != mallory {
		t.Errorf("a name that starts with # was lost on reading the file back")
	}
	if want := "alice " + alice.String() + "\nmallory " + mallory.String() + "\n\\#1 fan " + mallory.String() + "\n"; string(b) != want {
		t.Errorf("chat_names:\n%s\nwant\n%s", b, want)
	}
}

// Two servers on one config dir: a name claimed by one is seen by the other
// at its next claim, though it read the file before.
func TestNameOwnersSeeOtherWriters(t *testing.T) {
	dir := t.TempDir()
	a, err := NameOwnersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NameOwnersIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim("alice", fpOf("alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim("Alice", fpOf("mallory")); !errors.Is(err, ErrNameOwned) {
		t.Fatalf("the second server gave away a claimed name: %v", err)
	}
	var wg sync.WaitGroup
	// Each server claims 50 names for its own key, the other the same 50
	// for another key: each name goes to exactly one key.
	newClaims := make(chan string, 200)
	for i, o := range []*NameOwners{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fp := fpOf(strings.Repeat("k", i+1))
			for n := range 50 {
				name := "carol " + strings.Repeat("x", n+1)
				isNew, err := o.Claim(name, fp)
				if isNew {
					newClaims <- name
				} else if !errors.Is(err, ErrNameOwned) {
					t.Errorf("claim %q: new %v, %v", name, isNew, err)
				}
			}
		}()
	}
	wg.Wait()
	close(newClaims)
	given := map[string]int{}
	for n := range newClaims {
		given[n]++
	}
	if len(given) != 50 {
		t.Errorf("%d of the 50 names were given", len(given))
	}
	for n, times := range given {
		if times != 1 {
			t.Errorf("%q was given %d times", n, times)
		}
	}
}

func TestNameOwnersParseError(t *testing.T) {
	p := filepath.Join(t.TempDir(), ChatNamesFile)
	if err := os.WriteFile(p, []byte("alice "+fpOf("a").String()+"\nbob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadNameOwners(p)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(pe.Hint(), "free the name") {
		t.Fatalf("%v", err)
	}
}
