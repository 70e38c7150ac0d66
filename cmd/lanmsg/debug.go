package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/rooms"
)

// serveDebug serves, on an address of the operator's choosing (loopback is
// the sensible one), Go's pprof profiles and a JSON snapshot of the server:
// GET /debug/state -> {"goroutines":..,"sessions":..,"heap_bytes":..,...}.
// The adversarial tests use it to check that resources return to baseline,
// and the benchmarks to profile.
//
// links, if given, are listed under "links" (serve --link, --link-listen).
func serveDebug(ln net.Listener, srv *session.Server, bus *rooms.Bus, log *zerolog.Logger, links ...*rooms.Links) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/state", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var messages, bytes int64
		sessions := srv.Sessions()
		for _, s := range sessions {
			messages += s.Messages
			bytes += s.Bytes
		}
		var streams any
		if bus != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			st, err := bus.Stats(ctx)
			cancel()
			if err != nil {
				streams = err.Error()
			} else {
				streams = st
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"goroutines":    runtime.NumGoroutine(),
			"sessions":      len(sessions),
			"heap_bytes":    ms.HeapAlloc,
			"heap_objects":  ms.HeapObjects,
			"stack_bytes":   ms.StackInuse,
			"sys_bytes":     ms.Sys,
			"total_alloc":   ms.TotalAlloc,
			"live_messages": messages,
			"live_bytes":    bytes,
			"budget":        srv.Budget(),
			"hosts":         srv.Hosts(),
			"rooms":         srv.Rooms(),
			"streams":       streams,
			"links":         linkStates(links),
		})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Warn().Err(err).Msg("debug server stopped")
		}
	}()
	return hs
}

// linkStates lists the links for /debug/state: [] when there are none.
func linkStates(links []*rooms.Links) []rooms.LinkState {
	out := []rooms.LinkState{}
	for _, l := range links {
		out = append(out, l.State()...)
	}
	return out
}
