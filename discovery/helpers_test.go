package discovery

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func testLog(t testing.TB) *zerolog.Logger {
	l := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	return &l
}

// browseFor collects every instance found within d.
func browseFor(t testing.TB, d time.Duration) map[string]Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	got := map[string]Service{}
	err := Browse(ctx, BrowseConfig{Log: testLog(t)}, func(s Service) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[s.Instance]; dup {
			t.Errorf("instance %q reported twice", s.Instance)
		}
		got[s.Instance] = s
	})
	if err != nil {
		t.Fatalf("Browse: %v", err)
	}
	return got
}

// browseUntil returns the instance named name as soon as it is found, or fails after d.
func browseUntil(t testing.TB, name string, d time.Duration) (Service, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var got *Service
	var took time.Duration
	err := Browse(ctx, BrowseConfig{Log: testLog(t)}, func(s Service) {
		if s.Instance == name && got == nil {
			took = time.Since(start)
			got = &s
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Browse: %v", err)
	}
	if got == nil {
		t.Fatalf("Browse did not find %q within %v", name, d)
	}
	return *got, took
}
