package mirrorserve

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkIndex is the handler's own cost of one index.json request
// (no network): the per-request work besides net/http's.
func BenchmarkIndex(b *testing.B) {
	for _, limits := range []bool{false, true} {
		name := "limits-off"
		cfg := Config{}
		if limits {
			name, cfg = "limits-on", Config{Concelier: Part{MaxIndexRequestsPerHour: 1 << 30}}
		}
		b.Run(name, func(b *testing.B) {
			src, _ := fixture(&testing.T{})
			h, err := New(src, Options{Config: cfg})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/concelier/exports/index.json", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
