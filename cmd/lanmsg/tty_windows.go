package main

import (
	"errors"
	"io"
	"os"

	"golang.org/x/term"
)

// openControllingTTY opens the console the process runs in, even when stdin
// is a pipe carrying the messages: Windows has no /dev/tty, but CONIN$ and
// CONOUT$ are the console's keyboard and screen whatever the standard
// streams are.
func openControllingTTY() (io.ReadWriteCloser, error) {
	in, err := os.OpenFile("CONIN$", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile("CONOUT$", os.O_RDWR, 0)
	if err != nil {
		_ = in.Close()
		return nil, err
	}
	if !term.IsTerminal(int(in.Fd())) {
		_ = in.Close()
		_ = out.Close()
		return nil, errors.New("CONIN$ is not a console")
	}
	return console{in, out}, nil
}

// console reads the keyboard and writes the screen.
type console struct{ in, out *os.File }

func (c console) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c console) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c console) Close() error                { return errors.Join(c.in.Close(), c.out.Close()) }
