package authority

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
)

func TestDir(t *testing.T) {
	d, err := Dir("/site", "https://Authority.Internal:8443/realm")
	if err != nil || d != filepath.Join("/site", "authority", "authority.internal:8443") {
		t.Fatalf("Dir = %q, %v", d, err)
	}
	for _, bad := range []string{"", "https://", "https://a%2fb"} {
		if _, err := Dir("/site", bad); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("Dir(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authority", "a.internal")
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	md := Metadata{
		Discovery: []byte(`{"issuer":"https://a.internal"}`),
		JWKS:      []byte(`{"keys":[]}`),
		Meta:      Meta{Issuer: "https://a.internal", FetchedAt: at, LifetimeSeconds: 300, DiscoveryETag: `"d1"`, JWKSETag: `"j1"`},
	}
	if err := Save(dir, md); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Discovery) != string(md.Discovery) || string(got.JWKS) != string(md.JWKS) ||
		!got.Meta.FetchedAt.Equal(at) || got.Meta.Lifetime() != 5*time.Minute || got.Meta.JWKSETag != `"j1"` {
		t.Fatalf("Load = %+v", got)
	}

	// A JWKS replaced without its meta.json is refused, not paired.
	if err := os.WriteFile(filepath.Join(dir, JWKSFile), []byte(`{"keys":[{}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "meta.json") {
		t.Fatalf("torn cache: %v", err)
	}
	// Over the limit: read max+1 and fail.
	if err := os.WriteFile(filepath.Join(dir, JWKSFile), make([]byte, MaxDocumentSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), JWKSFile) {
		t.Fatalf("huge jwks: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("missing cache: %v", err)
	}
}

// The tolerance arithmetic of the package doc's timeline: lifetime 5 min,
// tolerance 10 min, fetched at 12:00.
func TestEvaluate(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	life := 5 * time.Minute
	var on Resilience // fallback on, tolerance 10 min
	f := false
	off := Resilience{AllowOfflineCacheFallback: &f}
	for _, c := range []struct {
		now       string
		r         Resilience
		want      State
		remaining time.Duration
	}{
		{"12:00:00", on, Fresh, 15 * time.Minute},
		{"12:05:00", on, Fresh, 10 * time.Minute},
		{"12:05:01", on, WithinTolerance, 10*time.Minute - time.Second},
		{"12:15:00", on, WithinTolerance, 0},
		{"12:15:01", on, Expired, 0},
		{"12:05:00", off, Fresh, 0},
		{"12:05:01", off, Expired, 0},
		{"11:58:00", on, Fresh, 17 * time.Minute}, // fetched by a clock 2 min ahead
	} {
		hm, _ := time.Parse("15:04:05", c.now)
		now := at.Add(hm.Sub(time.Date(0, 1, 1, 12, 0, 0, 0, time.UTC)))
		st := Evaluate(at, life, c.r, now)
		if st.State != c.want || st.Remaining != c.remaining {
			t.Errorf("at %s: %v remaining %v (%s); want %v remaining %v", c.now, st.State, st.Remaining, st.Reason, c.want, c.remaining)
		}
		if st.State != Fresh && st.Reason == "" {
			t.Errorf("at %s: no reason", c.now)
		}
	}
	if st := Evaluate(at.Add(time.Hour), life, on, at); st.State != Expired || !strings.Contains(st.Reason, "future") {
		t.Errorf("fetched an hour in the future: %+v", st)
	}
}

// A cache file swapped for a named pipe is refused by name, never waited
// on (serve loads the cache on every refresh).
func TestLoadRefusesNamedPipe(t *testing.T) {
	for _, name := range []string{MetaFile, DiscoveryFile, JWKSFile} {
		dir := filepath.Join(t.TempDir(), "a.internal")
		md := Metadata{
			Discovery: []byte(`{"issuer":"https://a.internal"}`),
			JWKS:      []byte(`{"keys":[]}`),
			Meta:      Meta{Issuer: "https://a.internal", FetchedAt: time.Unix(0, 0), LifetimeSeconds: 300},
		}
		if err := Save(dir, md); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		fifotest.Replace(t, p)
		done := fifotest.Guard(t, p)
		_, err := Load(dir)
		done()
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s a named pipe: %v", name, err)
		}
	}
}
