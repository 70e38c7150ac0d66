package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"time"

	"github.com/lanmsg/lanmsg/transport"
)

// The oneshot mode is the reference for `lanmsg send --server ADDR MSG`
// started as a process: the least a Go program can do for the same result
// (dial, send one frame and !DISCONNECT, wait for the server's close), so
// that the bench reports lanmsg's start-up and set-up as a ratio to it.

func init() {
	register("oneshot", "send one message as a minimal client would: the one-shot send's reference", runOneshot)
}

func runOneshot(args []string) error {
	fs := flag.NewFlagSet("oneshot", flag.ContinueOnError)
	addr := fs.String("addr", "", "the server's HOST:PORT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || fs.NArg() != 1 {
		return errors.New("usage: lanmsg-load oneshot -addr HOST:PORT MESSAGE")
	}
	nc, err := net.DialTimeout("tcp", *addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = nc.Close() }()
	b := transport.AppendFrame(nil, []byte(fs.Arg(0)))
	b = transport.AppendFrame(b, []byte(transport.Disconnect))
	if _, err := nc.Write(b); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, nc) // the orderly close confirms
	return err
}
