package main

import (
	"context"
	"errors"
	"os"

	"github.com/lanmsg/lanmsg/discovery"
)

// insideNetnsEnv is set, by the tests that create them, for processes that run
// inside a private network namespace. Only there may a test's lanmsg use
// mDNS: these machines' real interfaces lead outside, and no test may send
// multicast there.
const insideNetnsEnv = "LANMSG_TEST_NETNS"

// testLAN is the LAN the lanmsg under test uses: real mDNS inside a private
// network namespace made by a test, a refusal anywhere else.
func testLAN() lan {
	if os.Getenv(insideNetnsEnv) == "1" {
		return mdnsLAN{}
	}
	return refusingLAN{}
}

// errNoTestMulticast is what lanmsg under test reports when it would have
// used mDNS outside a test's network namespace.
var errNoTestMulticast = errors.New("mDNS is disabled in tests outside a private network namespace (set by the test harness)")

type refusingLAN struct{}

func (refusingLAN) Advertise(context.Context, discovery.AdvertiseConfig) (advertisement, error) {
	return nil, errNoTestMulticast
}

func (refusingLAN) Browse(context.Context, discovery.BrowseConfig, func(discovery.Service)) error {
	return errNoTestMulticast
}

func (refusingLAN) Watch(context.Context, discovery.BrowseConfig, func(discovery.Event)) error {
	return errNoTestMulticast
}
