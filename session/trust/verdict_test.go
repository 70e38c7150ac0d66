package trust

import (
	"fmt"
	"testing"
)

func pins(t *testing.T, lines ...string) *KnownServers {
	t.Helper()
	content := ""
	for _, l := range lines {
		content += l + "\n"
	}
	k, err := LoadKnownServers(writeFile(t, content))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJudge(t *testing.T) {
	real, other, third := fpOf("real"), fpOf("other"), fpOf("third")
	k := pins(t, "kitchen "+real.String(), "study "+third.String(), "10.0.0.1:5050 "+real.String())
	tests := []struct {
		name string
		fp   Fingerprint
		want Verdict
	}{
		{"kitchen", real, Pinned},
		{"Kitchen", real, Pinned},
		{"kitchen", other, Conflict},
		{"kitch\u0435n", other, Conflict}, // a look-alike of a pinned name
		{"kitchen", third, Conflict},      // a known key, but not this name's
		{"kitchen (2)", real, Renamed},    // the pinned key under a new name
		{"garage", other, New},
		{"garage", third, Renamed},
	}
	for _, tc := range tests {
		j := k.Judge(tc.name, tc.fp)
		if j.Verdict != tc.want {
			t.Errorf("Judge(%q, %s) = %v, want %v", tc.name, tc.fp.String()[:12], j.Verdict, tc.want)
		}
	}
	if j := k.Judge("kitchen", other); len(j.NamePins) != 1 || j.NamePins[0].Fingerprint != real {
		t.Errorf("a conflict's NamePins should hold the expected key: %v", j.NamePins)
	}
	if j := k.Judge("kitchen (2)", real); len(j.KeyPins) != 2 {
		t.Errorf("a rename's KeyPins should say where the key is pinned: %v", j.KeyPins)
	}
	for addr, want := range map[string]Verdict{"10.0.0.1:5050": Pinned, "10.0.0.2:5050": Renamed} {
		if j := k.JudgeAddr(addr, real); j.Verdict != want {
			t.Errorf("JudgeAddr(%s, real) = %v, want %v", addr, j.Verdict, want)
		}
	}
	if j := k.JudgeAddr("10.0.0.1:5050", other); j.Verdict != Conflict {
		t.Errorf("JudgeAddr with another key = %v, want conflict", j.Verdict)
	}
	if j := k.JudgeAddr("10.0.0.9:5050", other); j.Verdict != New {
		t.Errorf("JudgeAddr of a new address and key = %v, want new", j.Verdict)
	}
}

func TestResolve(t *testing.T) {
	real, evil, evil2 := fpOf("real"), fpOf("evil"), fpOf("evil2")
	pinned := pins(t, "kitchen "+real.String())
	empty := pins(t)
	ans := func(name string, fp Fingerprint) Answer { return Answer{Name: name, Fingerprint: fp} }
	tests := []struct {
		name      string
		k         *KnownServers
		answers   []Answer
		final     bool
		action    Action
		use       int
		pin       bool
		impostors string
		verdict   Verdict
	}{
		{"pinned answers", pinned, []Answer{ans("kitchen", real)}, false, Use, 0, false, "[]", Pinned},
		{"squatter first, then the real one renamed", pinned,
			[]Answer{ans("kitchen", evil), ans("kitchen (2)", real)}, false, Use, 1, false, "[0]", Renamed},
		{"the real one under its name wins over a rename", pinned,
			[]Answer{ans("kitchen (2)", real), ans("kitchen", real)}, false, Use, 1, false, "[]", Pinned},
		{"look-alike squatter", pinned,
			[]Answer{ans("KITCH\u0415N", evil), ans("kitchen", real)}, false, Use, 1, false, "[0]", Pinned},
		{"only a squatter, still looking", pinned, []Answer{ans("kitchen", evil)}, false, Wait, -1, false, "[0]", New},
		{"only a squatter at the timeout", pinned, []Answer{ans("kitchen", evil)}, true, Refuse, -1, false, "[0]", Conflict},
		{"nothing at the timeout", pinned, []Answer{ans("garage", evil)}, true, NotFound, -1, false, "[]", New},
		{"nothing yet", pinned, nil, false, Wait, -1, false, "[]", New},
		{"first contact", empty, []Answer{ans("garage", evil), ans("kitchen", real)}, false, Use, 1, true, "[]", New},
		{"first contact, two keys claim the name", empty,
			[]Answer{ans("kitchen", real), ans("Kitchen", evil2)}, false, Ambiguous, -1, false, "[0 1]", New},
		{"first contact with a key known under another name", pins(t, "garage "+evil.String()),
			[]Answer{ans("kitchen", evil)}, false, Use, 0, true, "[]", Renamed},
		{"first contact, one key twice", empty,
			[]Answer{ans("kitchen", real), ans("kitchen", real)}, false, Use, 0, true, "[]", New},
		{"unpinned name, nothing at the timeout", empty, nil, true, NotFound, -1, false, "[]", New},
	}
	for _, tc := range tests {
		r := tc.k.Resolve("kitchen", tc.answers, tc.final)
		if r.Action != tc.action || r.Use != tc.use || r.Pin != tc.pin || fmt.Sprint(r.Impostors) != tc.impostors {
			t.Errorf("%s: got %v use %d pin %v impostors %v; want %v use %d pin %v impostors %s",
				tc.name, r.Action, r.Use, r.Pin, r.Impostors, tc.action, tc.use, tc.pin, tc.impostors)
		}
		if (tc.action == Use || tc.action == Refuse) && r.Judgement.Verdict != tc.verdict {
			t.Errorf("%s: verdict %v, want %v", tc.name, r.Judgement.Verdict, tc.verdict)
		}
		if want := tc.k.ByName("kitchen"); len(r.Judgement.NamePins) != len(want) {
			t.Errorf("%s: NamePins %v, want the pins for kitchen %v", tc.name, r.Judgement.NamePins, want)
		}
	}
}

// A name pinned to a key and then answered by a renamed known server under
// a new name, pinned on use, is then Pinned there too: pins follow Use/Pin.
func TestResolveFirstContactThenPinned(t *testing.T) {
	k := pins(t)
	real := fpOf("real")
	r := k.Resolve("kitchen", []Answer{{Name: "kitchen", Fingerprint: real}}, false)
	if r.Action != Use || !r.Pin || r.Judgement.Verdict != New {
		t.Fatalf("first contact: %+v", r)
	}
	if _, err := k.Add("kitchen", real); err != nil {
		t.Fatal(err)
	}
	r = k.Resolve("kitchen", []Answer{{Name: "kitchen", Fingerprint: fpOf("evil")}}, true)
	if r.Action != Refuse {
		t.Fatalf("after pinning, another key as kitchen: %v, want refuse", r.Action)
	}
}
