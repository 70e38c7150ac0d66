package names

import (
	"testing"
	"unicode/utf8"
)

// A name the policy accepts is stable (accepting it again changes nothing),
// holds no refused character, fits the limit, and is confusable with itself
// and with the raw input's accepted form.
func FuzzNickname(f *testing.F) {
	for _, s := range []string{"alice", "alice ", "ALICE", "\u0430lice", "ali\u200bce", "\u202eecila", "José", "李雷", "ﬁsh", "ａｌｉｃｅ", "\u00a8", "a\u0345"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Nickname(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if !utf8.ValidString(n) || n == "" || len(n) > MaxNickname {
			t.Fatalf("Nickname(%+q) = %+q", s, n)
		}
		for _, r := range n {
			if why := refused(r); why != "" {
				t.Fatalf("Nickname(%+q) = %+q, which holds U+%04X (%s)", s, n, r, why)
			}
		}
		again, err := Nickname(n)
		if err != nil || again != n {
			t.Fatalf("Nickname(%+q) = %+q, but Nickname of that = %+q, %v", s, n, again, err)
		}
		if !Confusable(n, n) {
			t.Fatalf("%+q is not confusable with itself", n)
		}
	})
}
