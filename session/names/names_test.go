package names

import (
	"errors"
	"strings"
	"testing"
)

func TestNicknameRefusesLookalikesWithTheCharacterAndWhy(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		rune   rune
		offset int
		reason string
	}{
		{"tab", "alice\t", '\t', 5, "a control character"},
		{"newline", "ali\nce", '\n', 3, "a control character"},
		{"escape", "\x1b[2Jalice", 0x1b, 0, "a control character"},
		{"C1 control", "ali\u0085ce", 0x85, 3, "a control character"},
		{"zero-width space", "ali\u200bce", 0x200B, 3, "an invisible (zero-width) character"},
		{"zero-width joiner", "ali\u200dce", 0x200D, 3, "an invisible (zero-width) character"},
		{"byte order mark", "\ufeffalice", 0xFEFF, 0, "an invisible (zero-width) character"},
		{"right-to-left override", "\u202eecila", 0x202E, 0, "a bidirectional control, which changes the order text is shown in"},
		{"left-to-right isolate", "alice\u2066", 0x2066, 5, "a bidirectional control, which changes the order text is shown in"},
		{"right-to-left mark", "alice\u200f", 0x200F, 5, "a bidirectional control, which changes the order text is shown in"},
		{"soft hyphen", "ali\u00adce", 0xAD, 3, "an invisible formatting character"},
		{"line separator", "alice\u2028bob", 0x2028, 5, "a line or paragraph separator"},
		{"hangul filler", "\u3164alice", 0x3164, 0, "an invisible character"},
		{"variation selector", "alice\ufe0f", 0xFE0F, 5, "an invisible character"},
		{"private use", "alice\ue000", 0xE000, 5, "a private-use character, which shows differently on every machine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Nickname(tc.in)
			if err == nil {
				t.Fatalf("Nickname(%+q) = %+q, want it refused", tc.in, got)
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrBadChar) {
				t.Fatalf("error %v: want an *Error wrapping ErrBadChar", err)
			}
			if e.Rune != tc.rune || e.Offset != tc.offset || e.Reason != tc.reason {
				t.Errorf("got rune U+%04X at %d (%s), want U+%04X at %d (%s)", e.Rune, e.Offset, e.Reason, tc.rune, tc.offset, tc.reason)
			}
			if !strings.Contains(err.Error(), "U+") {
				t.Errorf("message %q does not name the character as U+XXXX", err)
			}
		})
	}
}

func TestNicknameMessageNamesTheCharacter(t *testing.T) {
	_, err := Nickname("ali\u200bce")
	want := `name "ali\u200bce": U+200B ZERO WIDTH SPACE at byte 3 is an invisible (zero-width) character; the name holds a character that names may not contain`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestNicknameAcceptsInternationalNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"José", "José"},
		{"Jose\u0301", "José"}, // decomposed: composed by NFC
		{"Zoë", "Zoë"},
		{"李雷", "李雷"},
		{"Ωmega", "Ωmega"},
		{"Ольга", "Ольга"},
		{"محمد", "محمد"},
		{"O'Brien", "O'Brien"},
		{"kitchen (2)", "kitchen (2)"},
		{"alice@laptop", "alice@laptop"},
		{"alice ", "alice"},                                // trailing space: trimmed
		{"  alice   bob ", "alice bob"},                    // runs of spaces: one
		{"alice\u00a0bob", "alice bob"},                    // no-break space: a space
		{"ａｌｉｃｅ", "alice"},                                 // full width: NFKC
		{"ﬁsh", "fish"},                                    // ligature: NFKC
		{strings.Repeat("é", 32), strings.Repeat("é", 32)}, // 64 bytes: the limit
	}
	for _, tc := range tests {
		got, err := Nickname(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Nickname(%+q) = %+q, %v; want %+q", tc.in, got, err, tc.want)
		}
	}
}

func TestNicknameRefusesEmptyAndLong(t *testing.T) {
	for _, in := range []string{"", " ", "\u00a0\u00a0"} {
		if _, err := Nickname(in); !errors.Is(err, ErrEmpty) {
			t.Errorf("Nickname(%+q): %v, want ErrEmpty", in, err)
		}
	}
	if _, err := Nickname(strings.Repeat("a", MaxNickname+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("65 bytes: %v, want ErrTooLong", err)
	}
	if _, err := Instance(strings.Repeat("a", MaxInstance+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("instance of 64 bytes: %v, want ErrTooLong", err)
	}
	if _, err := Instance(strings.Repeat("a", MaxInstance)); err != nil {
		t.Errorf("instance of 63 bytes: %v", err)
	}
	if _, err := Nickname("ali\xffce"); !errors.Is(err, ErrNotUTF8) {
		t.Errorf("invalid UTF-8: %v, want ErrNotUTF8", err)
	}
}

func TestConfusable(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"alice", "alice", true},
		{"alice", "ALICE", true},
		{"alice", "Alice", true},
		{"alice", "\u0430lice", true},           // Cyrillic а
		{"alice", "\u0430l\u0456\u0441e", true}, // Cyrillic а, і, с
		{"paypal", "p\u0430yp\u0430l", true},
		{"Ian", "lan", true},   // capital I and small l
		{"bob", "b0b", true},   // zero and o
		{"l33t", "I33t", true}, // small l and capital I
		{"modern", "rnodern", true},
		{"kitchen", "kitchen (2)", false},
		{"alice", "alicia", false},
		{"José", "Jose", false},
		{"Zoë", "Zoe", false},
		{"李雷", "李雪", false},
	}
	for _, tc := range tests {
		a, err := Nickname(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Nickname(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := Confusable(a, b); got != tc.want {
			t.Errorf("Confusable(%+q, %+q) = %v, want %v (keys %q, %q)", tc.a, tc.b, got, tc.want, Keys(a), Keys(b))
		}
	}
}

// The look-alikes of the issue: each is refused, or becomes a name that
// cannot be added next to "alice".
func TestSetKeepsLookalikesOut(t *testing.T) {
	var s Set
	if err := s.Add("alice"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"alice ", "alice\t", "\u0430lice", "ali\u200bce", "\u202eecila", "ALICE", " Alice"} {
		n, err := Nickname(in)
		if err != nil {
			continue // refused outright
		}
		err = s.Add(n)
		if !errors.Is(err, ErrConflict) {
			t.Errorf("%+q (as %+q) was added next to \"alice\": %v", in, n, err)
		} else if !strings.Contains(err.Error(), `"alice"`) {
			t.Errorf("conflict error %q does not name the holder", err)
		}
	}
	if err := s.Add("bob"); err != nil {
		t.Fatal(err)
	}
	s.Remove("alice")
	if err := s.Add("ALICE"); err != nil {
		t.Errorf("after Remove, ALICE: %v", err)
	}
	if h, ok := s.Holder("\u0430lice"); !ok || h != "ALICE" {
		t.Errorf("Holder(Cyrillic alice) = %q, %v; want ALICE", h, ok)
	}
}

func TestSkeletonIsUTS39(t *testing.T) {
	// Examples from UTS #39 and confusables.txt.
	tests := []struct{ in, want string }{
		{"\u0430", "a"},
		{"m", "rn"},
		{"1", "l"},
		{"\U0001D52D\U0001D4B6\u1EFF\U0001D561\U0001D552\u2113", "paypal"},
	}
	for _, tc := range tests {
		if got := Skeleton(tc.in); got != tc.want {
			t.Errorf("Skeleton(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}
