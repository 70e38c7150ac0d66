//go:build linux

package main

import (
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// TestServeQRCodeOnTerminal: with stderr on a terminal, serve draws the
// chat page's URL as a QR code there, for a phone to scan.
func TestServeQRCodeOnTerminal(t *testing.T) {
	bin := labLanmsg(t)
	tty := openPTY(t)
	cmd := exec.Command(bin, "--config-dir", t.TempDir(), "serve", "--no-advertise", "--listen", "127.0.0.1:0")
	cmd.Env = labBaseEnv()
	cmd.Stderr = tty.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // by PID: the process this test started
	tty.slave.Close()
	tty.waitFor("Scan to open the chat page: ", 15*time.Second)
	shown := tty.waitFor("/\r\n", 5*time.Second)
	m := regexp.MustCompile(`Scan to open the chat page: (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(shown)
	if m == nil {
		t.Fatalf("no URL under the QR code:\n%s", shown)
	}
	q, err := qrcode.New(m[1], qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	// The terminal turns \n into \r\n.
	want := strings.ReplaceAll(q.ToSmallString(false), "\n", "\r\n")
	if !strings.Contains(shown, want) {
		t.Errorf("the terminal does not show the QR code of %s:\n%s", m[1], shown)
	}
}
