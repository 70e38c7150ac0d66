package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
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

// TestREADMELogFields: every log field name that scripts may read (the
// constants of session/logfields.go) is listed in the README, and the README
// lists no other.
func TestREADMELogFields(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, _ := strings.Cut(string(b), "constants in\n`session/logfields.go`):\n")
	para, _, _ = strings.Cut(para, ".\n")
	listed := map[string]bool{}
	for _, f := range strings.Split(para, ",") {
		listed[strings.Trim(strings.TrimSpace(f), "`")] = true
	}
	fs := token.NewFileSet()
	file, err := parser.ParseFile(fs, "../../session/logfields.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			v, _ := strconv.Unquote(lit.Value)
			consts[v] = true
		}
		return true
	})
	for c := range consts {
		if !listed[c] {
			t.Errorf("log field %q (session/logfields.go) is not in the README's list", c)
		}
	}
	for l := range listed {
		if !consts[l] {
			t.Errorf("the README lists log field %q, which session/logfields.go does not have", l)
		}
	}
}
