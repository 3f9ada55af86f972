package serve

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKitMetrics(t *testing.T) {
	s := New(Config{}, nil)
	now := time.Now()
	s.Kits(func() (int, []Kit, error) {
		return 7, []Kit{
			{Name: "fresh", Version: "1.0.0", CreatedAt: now.Add(-time.Hour), StalenessWindow: 48 * time.Hour},
			{Name: "old", Version: "2.0.0", CreatedAt: now.Add(-72 * time.Hour), StalenessWindow: 48 * time.Hour},
			{Name: "nowindow", Version: "3.0.0", CreatedAt: now.Add(-9000 * time.Hour)},
		}, nil
	})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"offkit_site_generation 7",
		`offkit_kit_info{kit="old",version="2.0.0"} 1`,
		`offkit_kit_stale{kit="fresh"} 0`,
		`offkit_kit_stale{kit="old"} 1`,
		`offkit_kit_stale{kit="nowindow"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
