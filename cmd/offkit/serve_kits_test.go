package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/site"
)

// serve's /metrics and /readyz tell a kit's staleness and expiry as
// site.KitState decides them, at the clock serve is given: a kit turns
// expired exactly at its expiresAt, without a restart.
func TestServeKitsExpiryFollowsTheClock(t *testing.T) {
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	expires := created.Add(10 * 24 * time.Hour)
	state := &site.State{Generation: 4, Kits: []site.KitState{
		{Name: "fresh", Version: "1.0.0", CreatedAt: created, StalenessWindowHours: 24 * 365},
		{Name: "app", Version: "2.0.0", CreatedAt: created, ExpiresAt: &expires, StalenessWindowHours: 48},
	}}
	now := expires.Add(-time.Second)
	list := serveKits(func() (*site.State, error) { return state, nil }, func() time.Time { return now })

	def := serve.New(serve.Config{}, nil)
	def.Kits(list)
	strict := serve.New(serve.Config{Readiness: serve.Readiness{FailOnExpiredKit: true}}, nil)
	strict.Kits(list)
	get := func(s *serve.Server, path string) (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	metrics := func(want ...string) {
		t.Helper()
		_, body := get(def, "/metrics")
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				t.Errorf("at %s /metrics lacks %q", now.Format(time.RFC3339), w)
			}
		}
	}

	// A second before expiresAt: stale (past its 48h window), not expired.
	metrics(`offkit_kit_stale{kit="app"} 1`, `offkit_kit_expired{kit="app"} 0`,
		`offkit_kit_stale{kit="fresh"} 0`, `offkit_kit_expired{kit="fresh"} 0`,
		`offkit_kit_age_seconds{kit="app"} 863999`)
	if code, body := get(strict, "/readyz"); code != 200 {
		t.Errorf("failOnExpiredKit before expiresAt: /readyz %d %q, want 200", code, body)
	}

	// Exactly at expiresAt: expired.
	now = expires
	metrics(`offkit_kit_expired{kit="app"} 1`, `offkit_kit_expired{kit="fresh"} 0`)
	if code, body := get(def, "/readyz"); code != 200 {
		t.Errorf("default /readyz with an expired kit: %d %q, want 200 (images keep serving)", code, body)
	}
	code, body := get(strict, "/readyz")
	if code != 503 || !strings.Contains(body, "kit app 2.0.0 expired at 2026-11-11T00:00:00Z") {
		t.Errorf("failOnExpiredKit at expiresAt: /readyz %d %q, want 503 naming kit app", code, body)
	}
}
