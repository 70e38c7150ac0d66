package main

import "golang.org/x/sys/windows"

// blockedSendErrno is what a firewall rule makes a send fail with.
var blockedSendErrno = windows.WSAEACCES
