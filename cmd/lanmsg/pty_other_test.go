//go:build !linux

package main

import (
	"os"
	"testing"
)

// pty: the pseudo-terminal tests open /dev/ptmx the Linux way (pty_test.go);
// elsewhere they skip.
type pty struct {
	master, slave *os.File
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	t.Skip("the pseudo-terminal tests run on Linux only")
	return nil
}

func (p *pty) typeIn(string) {}
