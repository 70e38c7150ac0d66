package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/rs/zerolog"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/lanmsg/lanmsg/session/rooms"
)

// defaultRoom is the room the chat page's room field shows: the one
// `lanmsg chat` joins.
const defaultRoom = rooms.DefaultRoom

// showPage logs the chat page's URL and, when stderr is a terminal, draws
// it as a QR code there, for a phone to scan.
func (c *serveCmd) showPage(std streams, log *zerolog.Logger, bound *net.TCPAddr, adv advertisement) {
	addr, why := pageAddr(bound, adv)
	u := pageURL(addr, bound.Port)
	ev := log.Info().Str("url", u)
	if why != "" {
		ev = ev.Str("note", why)
	}
	ev.Msg("chat page: open " + u + " in a browser on the LAN (--no-web turns it off)")
	if !isTerminal(std.err) {
		return
	}
	q, err := qrcode.New(u, qrcode.Medium)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(std.err, "%s\n  Scan to open the chat page: %s\n\n", q.ToSmallString(false), u)
}

// pageAddr picks the address to show in the page's URL: the one listened
// on, else the first advertised, else this machine's first LAN address,
// else loopback (with why).
func pageAddr(bound *net.TCPAddr, adv advertisement) (netip.Addr, string) {
	if ip, ok := netip.AddrFromSlice(bound.IP); ok && !ip.Unmap().IsUnspecified() {
		return ip.Unmap(), ""
	}
	if adv != nil {
		as := adv.Service().Addrs
		for _, a := range as {
			if a.Is4() {
				return a, ""
			}
		}
		if len(as) > 0 {
			return as[0], ""
		}
	}
	if ias, err := net.InterfaceAddrs(); err == nil {
		var v6 netip.Addr
		for _, ia := range ias {
			p, err := netip.ParsePrefix(ia.String())
			if err != nil {
				continue
			}
			a := p.Addr().Unmap()
			if a.IsLoopback() || a.IsLinkLocalUnicast() || !a.IsGlobalUnicast() {
				continue
			}
			if a.Is4() {
				return a, ""
			}
			if !v6.IsValid() {
				v6 = a
			}
		}
		if v6.IsValid() {
			return v6, ""
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1}), "no LAN address found: only this machine can open it"
}
