package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The sink mode is the reference the benchmarks hold `lanmsg serve` against:
// the fewest lines of Go that read the tutorial's frames and write each
// payload as a line to buffered stdout. No limits, no escaping, no budget,
// no receipts: what the kernel and the hardware allow, so that the ratio to
// it shows what lanmsg's own work costs.

func init() {
	register("sink", "a minimal frame reader that prints each payload: the benchmarks' reference", runSink)
}

func runSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Announced as lanmsg serve announces itself, so that the harness starts
	// both alike.
	fmt.Fprintf(os.Stderr, "{\"message\":\"lanmsg serving (reference sink)\",\"addr\":%q}\n", ln.Addr().String())
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		_ = ln.Close()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		go func() {
			defer func() { _ = nc.Close() }()
			r := bufio.NewReaderSize(nc, 64<<10)
			var hdr [64]byte
			var buf []byte
			for {
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					return
				}
				n, err := strconv.Atoi(strings.TrimSpace(string(hdr[:])))
				if err != nil || n < 0 {
					return
				}
				if n > cap(buf) {
					buf = make([]byte, n)
				}
				p := buf[:n]
				if _, err := io.ReadFull(r, p); err != nil {
					return
				}
				mu.Lock()
				if string(p) == "!DISCONNECT" {
					_ = out.Flush()
					mu.Unlock()
					return
				}
				_, _ = out.Write(p)
				_ = out.WriteByte('\n')
				mu.Unlock()
			}
		}()
	}
	mu.Lock()
	defer mu.Unlock()
	return out.Flush()
}
