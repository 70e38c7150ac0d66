package neterr

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
)

// The errors come from real sockets on loopback, so that on each system the
// test checks that system's errnos, not a table copied from the code.

func TestAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err == nil {
		ln2.Close()
		t.Fatal("listening twice on one port succeeded")
	}
	if !AddrInUse(err) {
		t.Errorf("AddrInUse(%v) = false", err)
	}
	if Reset(err) || Refused(err) || Denied(err) {
		t.Errorf("%v is classified as something else too", err)
	}
}

func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Skip("something listens on the port just closed")
	}
	if !Refused(err) {
		t.Errorf("Refused(%v) = false", err)
	}
	if AddrInUse(err) || Reset(err) {
		t.Errorf("%v is classified as something else too", err)
	}
}

func TestReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	// Close with SO_LINGER 0: the peer gets an RST.
	_ = sc.(*net.TCPConn).SetLinger(0)
	sc.Close()
	_, err = c.Read(make([]byte, 1))
	if err == io.EOF {
		t.Fatal("the reset read as an orderly close")
	}
	if !Reset(err) {
		t.Errorf("Reset(%v) = false", err)
	}
}

func TestWrapped(t *testing.T) {
	// What the net package returns, wrapped again as lanmsg does.
	inner := errors.New("not a socket error")
	err := fmt.Errorf("send: %w", &net.OpError{Op: "write", Net: "udp", Err: &os.SyscallError{Syscall: "sendto", Err: inner}})
	for name, f := range map[string]func(error) bool{"AddrInUse": AddrInUse, "AddrNotAvailable": AddrNotAvailable,
		"Reset": Reset, "Refused": Refused, "Unreachable": Unreachable, "Denied": Denied, "MulticastBlocked": MulticastBlocked} {
		if f(err) || f(nil) {
			t.Errorf("%s matches an unrelated error or nil", name)
		}
	}
}
