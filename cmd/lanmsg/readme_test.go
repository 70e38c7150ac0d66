package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEFirstRun: the quick start warns that the first go run compiles
// for a while, so that a newcomer does not take the wait for a hang.
func TestREADMEFirstRun(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quick, _, _ := strings.Cut(string(b), "\n## Commands")
	_, quick, _ = strings.Cut(quick, "## Quick start")
	for _, want := range []string{"The first `go run` compiles", "2-core machine", "CPU-seconds"} {
		if !strings.Contains(quick, want) {
			t.Errorf("the quick start does not say %q", want)
		}
	}
}
