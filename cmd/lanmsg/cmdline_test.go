package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestChosenCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"send", "hi"}, "send"},
		{[]string{"--log-level", "debug", "send", "hi"}, "send"},
		{[]string{"--log-level=debug", "chat"}, "chat"},
		{[]string{"--config-dir", "send", "chat"}, "chat"}, // a flag's value is not the command
		{[]string{"--help"}, ""},
		{[]string{"--", "send"}, ""},
		{[]string{"sned"}, "sned"},
	} {
		if got := chosenCommand(tc.args); got != tc.want {
			t.Errorf("chosenCommand(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestValueFlags keeps valueFlags in step with cli: every global flag that
// takes a value must be listed, or chosenCommand takes its value for the
// command.
func TestValueFlags(t *testing.T) {
	typ := reflect.TypeOf(cli{})
	var want []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() == reflect.Bool || f.Name == "VersionFlag" {
			continue
		}
		name := f.Tag.Get("name")
		if name == "" {
			// kong's default: the field name in kebab case.
			var b strings.Builder
			for j, r := range f.Name {
				if j > 0 && r >= 'A' && r <= 'Z' {
					b.WriteByte('-')
				}
				b.WriteRune(r)
			}
			name = strings.ToLower(b.String())
		}
		want = append(want, "--"+name)
	}
	slices.Sort(want)
	got := slices.Clone(valueFlags)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("valueFlags = %q, want %q", got, want)
	}
}

// TestOneCommandModelMatchesWhole checks that the model of one command, used
// to start faster, gives the same help as the whole model and takes every
// flag the whole model takes for that command.
func TestOneCommandModelMatchesWhole(t *testing.T) {
	for _, cmd := range commands() {
		if cmd.name == "usage" {
			continue
		}
		var outs [2]strings.Builder
		for i, only := range []string{"", cmd.name} {
			exitCode := -1
			var c cli
			p, ok := newParser(&c, only, nil, streams{nil, &outs[i], io.Discard}, &exitCode)
			if !ok {
				t.Fatalf("no model for %q", only)
			}
			if _, code, done, err := parse(p, []string{cmd.name, "--help"}, &exitCode); !done || code != 0 || err != nil {
				t.Fatalf("%s --help with model %q: done %v code %d err %v", cmd.name, only, done, code, err)
			}
		}
		if outs[0].String() != outs[1].String() {
			t.Errorf("%s --help differs between the whole model and the command's own:\n%s\n---\n%s", cmd.name, outs[0].String(), outs[1].String())
		}
	}
}

// TestOneCommandModelParsesAlike checks that every line the model of one
// command accepts, the whole model accepts with the same command and values.
func TestOneCommandModelParsesAlike(t *testing.T) {
	for _, args := range [][]string{
		{"send", "hi"},
		{"--log-level", "debug", "send", "--server", "127.0.0.1:5050", "--receipts", "a", "b"},
		{"--config-dir=/tmp/x", "chat", "--as", "bob"},
		{"serve", "--listen", "127.0.0.1:0", "--no-advertise", "--max-payload", "1MiB"},
		{"browse", "--json"},
		{"forget", "kitchen"},
		{"id", "--json"},
	} {
		parsed := func(only string) string {
			exitCode := -1
			var c cli
			p, ok := newParser(&c, only, nil, streams{nil, io.Discard, io.Discard}, &exitCode)
			if !ok {
				t.Fatalf("no model for %q", only)
			}
			kctx, _, done, err := parse(p, args, &exitCode)
			if err != nil || done {
				t.Fatalf("%q with model %q: done %v, err %v", args, only, done, err)
			}
			var b strings.Builder
			b.WriteString(kctx.Command())
			for _, f := range kctx.Flags() {
				fmt.Fprintf(&b, " %s=%v", f.Name, kctx.FlagValue(f))
			}
			for _, a := range kctx.Args {
				b.WriteString(" " + a)
			}
			return b.String()
		}
		if whole, one := parsed(""), parsed(chosenCommand(args)); whole != one {
			t.Errorf("%q:\nwhole model: %s\none command: %s", args, whole, one)
		}
	}
}
