package serve

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// getBody answers GET path on s.
func getBody(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := get(t, s, "GET", path)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestKitMetrics(t *testing.T) {
	s := New(Config{}, nil)
	expires := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s.Kits(func() (int, []Kit, error) {
		return 7, []Kit{
			{Name: "fresh", Version: "1.0.0", Age: time.Hour},
			{Name: "old", Version: "2.0.0", Age: 72 * time.Hour, Stale: true},
			{Name: "gone", Version: "3.0.0", Age: 90 * time.Minute, Stale: true, Expired: true, ExpiresAt: expires},
		}, nil
	})
	_, body := getBody(t, s, "/metrics")
	for _, want := range []string{
		"offkit_site_generation 7",
		`offkit_kit_info{kit="old",version="2.0.0"} 1`,
		`offkit_kit_age_seconds{kit="gone"} 5400`,
		`offkit_kit_stale{kit="fresh"} 0`,
		`offkit_kit_stale{kit="old"} 1`,
		`offkit_kit_expired{kit="fresh"} 0`,
		`offkit_kit_expired{kit="old"} 0`,
		`offkit_kit_expired{kit="gone"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// An expired kit keeps /readyz ready unless readiness.failOnExpiredKit is
// set; then /readyz fails naming the kit, and is ready again once no active
// kit has expired.
func TestReadyzWithAnExpiredKit(t *testing.T) {
	expires := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	expired := true
	list := func() (int, []Kit, error) {
		return 3, []Kit{
			{Name: "fresh", Version: "1.0.0"},
			{Name: "gone", Version: "3.0.0", Expired: expired, ExpiresAt: expires},
		}, nil
	}

	def := New(Config{}, nil)
	def.Kits(list)
	if code, body := getBody(t, def, "/readyz"); code != 200 {
		t.Errorf("default /readyz with an expired kit: %d %q, want 200", code, body)
	}

	on := New(Config{Readiness: Readiness{FailOnExpiredKit: true}}, nil)
	on.Kits(list)
	code, body := getBody(t, on, "/readyz")
	if code != 503 {
		t.Errorf("/readyz with failOnExpiredKit and an expired kit: %d, want 503", code)
	}
	if !strings.Contains(body, "kit gone 3.0.0 expired at 2026-11-01T00:00:00Z") || strings.Contains(body, "fresh") {
		t.Errorf("/readyz body %q does not name the expired kit (alone)", body)
	}
	expired = false
	if code, body := getBody(t, on, "/readyz"); code != 200 {
		t.Errorf("/readyz with failOnExpiredKit and no expired kit: %d %q, want 200", code, body)
	}
}

func TestLoadConfigReadiness(t *testing.T) {
	p := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(p, []byte("readiness:\n  failOnExpiredKit: true\n"), 0o644)
	if c, err := LoadConfig(p); err != nil || !c.Readiness.FailOnExpiredKit {
		t.Fatalf("readiness.failOnExpiredKit: %+v %v", c, err)
	}
	for _, bad := range []string{"readiness:\n  failOnExpiredKit: yes please\n", "readiness:\n  failOnStaleKit: true\n"} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := LoadConfig(p); err == nil {
			t.Errorf("config %q accepted", bad)
		}
	}
}
