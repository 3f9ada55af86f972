package site

import (
	"testing"
	"time"
)

func TestKitStateStaleAndExpiredAtTheBoundaries(t *testing.T) {
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	expires := created.Add(30 * 24 * time.Hour)
	k := KitState{Name: "app", CreatedAt: created, ExpiresAt: &expires, StalenessWindowHours: 48}
	window := 48 * time.Hour
	for _, c := range []struct {
		name           string
		now            time.Time
		stale, expired bool
	}{
		{"at creation", created, false, false},
		{"a nanosecond before the window", created.Add(window - time.Nanosecond), false, false},
		{"exactly at the window", created.Add(window), false, false},
		{"a nanosecond past the window", created.Add(window + time.Nanosecond), true, false},
		{"a nanosecond before expiresAt", expires.Add(-time.Nanosecond), true, false},
		{"exactly at expiresAt", expires, true, true},
		{"after expiresAt", expires.Add(time.Hour), true, true},
	} {
		if got := k.Stale(c.now); got != c.stale {
			t.Errorf("%s: Stale = %v, want %v", c.name, got, c.stale)
		}
		if got := k.Expired(c.now); got != c.expired {
			t.Errorf("%s: Expired = %v, want %v", c.name, got, c.expired)
		}
		if got, want := k.Age(c.now), c.now.Sub(created); got != want {
			t.Errorf("%s: Age = %v, want %v", c.name, got, want)
		}
	}
}

func TestKitStateWithoutWindowOrExpiry(t *testing.T) {
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	k := KitState{Name: "app", CreatedAt: created}
	now := created.Add(100 * 365 * 24 * time.Hour)
	if k.Stale(now) {
		t.Error("a kit without stalenessWindowHours is stale")
	}
	if k.Expired(now) {
		t.Error("a kit without expiresAt has expired")
	}
	if k.StalenessWindow() != 0 {
		t.Errorf("StalenessWindow = %v, want 0", k.StalenessWindow())
	}
}
