package names

import "testing"

// BenchmarkNicknameAndKeys is what a chat join costs for its name: the
// policy, then the uniqueness keys.
func BenchmarkNicknameAndKeys(b *testing.B) {
	for b.Loop() {
		n, err := Nickname("José García@laptop")
		if err != nil {
			b.Fatal(err)
		}
		_ = Keys(n)
	}
}
