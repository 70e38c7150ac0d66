// Command minclient is the reference for `lanmsg send --server ADDR MSG`
// started as a process: the least a Go program can do for the same result
// (dial, send one frame and !DISCONNECT, wait for the server's orderly
// close). `lanmsg-load bench -minclient PATH` times it side by side with
// lanmsg and prints the ratio.
//
// It is a program of its own, not a mode of lanmsg-load, because a
// program's start-up grows with what it links: lanmsg-load links the session
// package, and with it nats-server, whose package initialisation alone took
// it from 6 to 22 ms per start on the 2-core VM of the README's figures. It
// imports the standard library and lanmsg's transport package only.
//
// Usage: minclient ADDR MESSAGE
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: minclient HOST:PORT MESSAGE")
		os.Exit(2)
	}
	if err := send(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "minclient:", err)
		os.Exit(1)
	}
}

func send(addr, msg string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = nc.Close() }()
	b := transport.AppendFrame(nil, []byte(msg))
	b = transport.AppendFrame(b, []byte(transport.Disconnect))
	if _, err := nc.Write(b); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, nc) // the orderly close confirms
	return err
}
