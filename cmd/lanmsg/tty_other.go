//go:build !windows

package main

import (
	"errors"
	"io"
	"os"

	"golang.org/x/term"
)

// openControllingTTY opens the terminal the process runs in, even when stdin
// is a pipe carrying the messages.
func openControllingTTY() (io.ReadWriteCloser, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if !term.IsTerminal(int(f.Fd())) {
		_ = f.Close()
		return nil, errors.New("/dev/tty is not a terminal")
	}
	return f, nil
}
