package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
)

// lan is what the commands need of mDNS. mdnsLAN is the real one; tests
// give the commands a fake, so that they need no multicast.
type lan interface {
	Advertise(ctx context.Context, cfg discovery.AdvertiseConfig) (advertisement, error)
	Browse(ctx context.Context, cfg discovery.BrowseConfig, found func(discovery.Service)) error
	Watch(ctx context.Context, cfg discovery.BrowseConfig, event func(discovery.Event)) error
}

// advertisement is a running advertisement.
type advertisement interface {
	Service() discovery.Service
	Close() error
}

type mdnsLAN struct{}

func (mdnsLAN) Advertise(ctx context.Context, cfg discovery.AdvertiseConfig) (advertisement, error) {
	return discovery.Advertise(ctx, cfg)
}

func (mdnsLAN) Browse(ctx context.Context, cfg discovery.BrowseConfig, found func(discovery.Service)) error {
	return discovery.Browse(ctx, cfg, found)
}

func (mdnsLAN) Watch(ctx context.Context, cfg discovery.BrowseConfig, event func(discovery.Event)) error {
	return discovery.Watch(ctx, cfg, event)
}

// mdnsFlags are the discovery flags shared by the commands.
type mdnsFlags struct {
	Interface []string `placeholder:"NAME" help:"Use mDNS on this network interface only (e.g. eth0, wlan0): queries, answers and advertised addresses stay on it. Repeat for several. Default: every multicast-capable interface, followed as they come and go."`
}

// iface checks the --interface names: each must exist now.
func (f mdnsFlags) iface() ([]string, error) {
	for _, name := range f.Interface {
		if _, err := net.InterfaceByName(name); err != nil {
			names := []string{}
			if all, err := net.Interfaces(); err == nil {
				for _, i := range all {
					names = append(names, i.Name)
				}
			}
			return nil, &cliError{code: exitUsage, err: fmt.Errorf("--interface %q: no such network interface", name),
				hint: "this machine has: " + strings.Join(names, ", ")}
		}
	}
	return f.Interface, nil
}

// browseHint is what to check when no server is found.
const browseHint = "is 'lanmsg serve' running (without --no-advertise)? Is this machine on the same LAN? " +
	"mDNS needs UDP port 5353 open in both machines' firewalls, and some Wi-Fi networks (guest networks, 'AP isolation') block it; " +
	"you can always give the address with --server HOST:PORT"

func browseConfig(log *zerolog.Logger, ifaces []string) discovery.BrowseConfig {
	return discovery.BrowseConfig{Interfaces: ifaces, Log: log}
}
