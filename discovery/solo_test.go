//go:build linux

package discovery

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lanmsg/lanmsg/discovery/netlab"
)

func advertise(t *testing.T, cfg AdvertiseConfig) *Advertiser {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = testLog(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := Advertise(ctx, cfg)
	if err != nil {
		t.Fatalf("Advertise: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestSoloAdvertiseBrowse(t *testing.T) {
	if !netlab.Solo(t) {
		return
	}
	a := advertise(t, AdvertiseConfig{Instance: "solo one", Hostname: "solohost", Port: 4242, TXT: map[string]string{"ver": "1.2.3"}})
	adv := a.Service()
	if adv.Instance != "solo one" || adv.Host != "solohost.local." || adv.TXT["v"] != "1" || len(adv.TXT["id"]) != 16 {
		t.Fatalf("advertised %+v", adv)
	}
	// In the solo namespace loopback is the only multicast interface: 127.0.0.1 is the
	// deliberate default there.
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}; !slices.Equal(adv.Addrs, want) {
		t.Fatalf("advertised addrs %v, want %v", adv.Addrs, want)
	}
	got, took := browseUntil(t, "solo one", 5*time.Second)
	t.Logf("found in %v: %+v", took, got)
	if got.Port != 4242 || got.Host != "solohost.local." || got.TXT["ver"] != "1.2.3" || got.TXT["id"] != adv.TXT["id"] || got.TXT["v"] != "1" {
		t.Errorf("found %+v, want %+v", got, adv)
	}
	if !slices.Equal(got.Addrs, adv.Addrs) {
		t.Errorf("found addrs %v, want %v", got.Addrs, adv.Addrs)
	}
	if eps := got.Endpoints(); !slices.Equal(eps, []string{"127.0.0.1:4242"}) {
		t.Errorf("endpoints %v", eps)
	}
	// The answer to the first query must do: the browser asks again only at
	// firstRequery, so being found later means the first answer was lost or
	// ignored. (How fast this is lives in BenchmarkBrowseFirstLine.)
	if took >= firstRequery {
		t.Errorf("found after %v, later than the second query at %v: the first query went unanswered", took, firstRequery)
	}
}

func TestSoloNameConflict(t *testing.T) {
	if !netlab.Solo(t) {
		return
	}
	a1 := advertise(t, AdvertiseConfig{Instance: "twin", Hostname: "solohost", Port: 1001})
	a2 := advertise(t, AdvertiseConfig{Instance: "twin", Hostname: "solohost", Port: 1002})
	a3 := advertise(t, AdvertiseConfig{Instance: "twin", Hostname: "solohost", Port: 1003})
	if n := a1.Service().Instance; n != "twin" {
		t.Errorf("first advertiser is %q, want twin", n)
	}
	if n := a2.Service().Instance; n != "twin (2)" {
		t.Errorf("second advertiser is %q, want \"twin (2)\"", n)
	}
	if n := a3.Service().Instance; n != "twin (3)" {
		t.Errorf("third advertiser is %q, want \"twin (3)\"", n)
	}
	// Same machine (shared address): the host name is not a conflict.
	if h := a2.Service().Host; h != "solohost.local." {
		t.Errorf("second advertiser's host is %q, want solohost.local.", h)
	}
	got := browseFor(t, 1500*time.Millisecond)
	for _, a := range []*Advertiser{a1, a2, a3} {
		want := a.Service()
		s, ok := got[want.Instance]
		if !ok {
			t.Errorf("browse did not list %q (got %v)", want.Instance, got)
			continue
		}
		if s.Port != want.Port || s.TXT["id"] != want.TXT["id"] {
			t.Errorf("%q: found port %d id %s, want %d %s", want.Instance, s.Port, s.TXT["id"], want.Port, want.TXT["id"])
		}
	}
}

func TestSoloCloseSendsGoodbye(t *testing.T) {
	if !netlab.Solo(t) {
		return
	}
	a := advertise(t, AdvertiseConfig{Instance: "leaving", Hostname: "solohost", Port: 1001})
	if _, took := browseUntil(t, "leaving", 3*time.Second); took > time.Second {
		t.Errorf("found after %v", took)
	}
	// A watcher sees it removed when Close says goodbye.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var events []Event
	closed := false
	err := Watch(ctx, BrowseConfig{Log: testLog(t)}, func(ev Event) {
		events = append(events, ev)
		if ev.Kind == Added && ev.Service.Instance == "leaving" && !closed {
			closed = true
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}
		if ev.Kind == Removed && ev.Service.Instance == "leaving" {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Kind != Added || events[1].Kind != Removed {
		t.Fatalf("watch events %+v, want add then remove", events)
	}
	if got := browseFor(t, 1500*time.Millisecond); len(got) != 0 {
		t.Errorf("after Close, browse still finds %v", got)
	}
}
