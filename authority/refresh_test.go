package authority

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

func TestRefreshFresh(t *testing.T) {
	f := newFakeIssuer(t)
	c := newClock()
	r := f.refresher(t, t.TempDir(), c)
	rep, err := r.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Fetched || rep.Attempts != 1 || rep.Status.State != Fresh || rep.Meta.Lifetime() != 5*time.Minute {
		t.Fatalf("report %+v", rep)
	}
	if !reflect.DeepEqual(rep.KeyIDs, []string{"rs", "ps", "es", "ed"}) {
		t.Fatalf("key ids %v", rep.KeyIDs)
	}
	md, err := Load(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !md.Meta.FetchedAt.Equal(c.Now()) || md.Meta.JWKSURI != f.URL+"/jwks" || md.Meta.JWKSETag != `"jwks-0"` {
		t.Fatalf("meta %+v", md.Meta)
	}
}

func TestRefreshRevalidates(t *testing.T) {
	f := newFakeIssuer(t)
	c := newClock()
	r := f.refresher(t, t.TempDir(), c)
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Advance(4 * time.Minute)
	rep, err := r.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Revalidated || rep.Fetched || !rep.Meta.FetchedAt.Equal(c.Now()) {
		t.Fatalf("304 revalidation: %+v", rep)
	}
	if got := f.condition[len(f.condition)-2:]; got[0] == "" || got[1] != `"jwks-0"` {
		t.Fatalf("If-None-Match sent: %q", got)
	}
	// A rotation changes the ETag: new keys are fetched.
	f.rotate(issuerKeys(t)[2])
	rep, err = r.Refresh(context.Background())
	if err != nil || !rep.Fetched || !reflect.DeepEqual(rep.KeyIDs, []string{"es"}) {
		t.Fatalf("after rotation: %+v, %v", rep, err)
	}
}

func TestRefreshRefusesDocuments(t *testing.T) {
	for name, c := range map[string]struct {
		mut  func(f *fakeIssuer)
		want string
	}{
		"mismatched issuer": {func(f *fakeIssuer) { f.issuer = f.URL + "/" }, "is not the configured issuer"},
		"other issuer":      {func(f *fakeIssuer) { f.issuer = "https://evil.example" }, "is not the configured issuer"},
		"jwks_uri http":     {func(f *fakeIssuer) { f.jwksURI = "http://keys.example/jwks" }, "jwks_uri"},
		"jwks_uri relative": {func(f *fakeIssuer) { f.jwksURI = "/jwks" }, "not an absolute URL"},
		"garbage discovery": {func(f *fakeIssuer) { f.discBody = []byte("<html>proxy error</html>") }, "not a JSON object"},
		"huge discovery":    {func(f *fakeIssuer) { f.discBody = make([]byte, MaxDocumentSize+1) }, "over 1048576 bytes"},
		"garbage jwks":      {func(f *fakeIssuer) { f.jwksBody = []byte(`[1,2,3]`) }, "not a JSON object"},
		"huge jwks":         {func(f *fakeIssuer) { f.jwksBody = []byte(`{"keys":[` + strings.Repeat(" ", MaxDocumentSize) + `]}`) }, "over 1048576 bytes"},
		"empty jwks":        {func(f *fakeIssuer) { f.jwksBody = []byte(`{"keys":[]}`) }, "no usable signing key"},
		"symmetric jwks":    {func(f *fakeIssuer) { f.jwksBody = []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`) }, "private or symmetric"},
		"not found":         {func(f *fakeIssuer) { f.status = http.StatusNotFound }, "HTTP 404"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeIssuer(t)
			clock := newClock()
			r := f.refresher(t, t.TempDir(), clock)
			f.set(c.mut)
			rep, err := r.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Refresh = %v, want %q", err, c.want)
			}
			if name != "not found" && !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("%v does not wrap ErrInvalid", err)
			}
			if rep.Attempts != 1 || len(clock.slept) != 0 || rep.FellBack {
				t.Fatalf("a refused document is not retried: %+v", rep)
			}
			if _, err := Load(rep.Dir); !errors.Is(err, errdef.ErrNotFound) {
				t.Fatalf("cache written: %v", err)
			}
		})
	}
}

func TestRefreshRetryLadder(t *testing.T) {
	f := newFakeIssuer(t)
	f.set(func(f *fakeIssuer) { f.status = http.StatusServiceUnavailable })
	c := newClock()
	r := f.refresher(t, t.TempDir(), c)
	rep, err := r.Refresh(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no cached metadata") {
		t.Fatalf("Refresh = %v", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second}
	if !reflect.DeepEqual(c.slept, want) || rep.Attempts != 4 || !reflect.DeepEqual(rep.Waited, want) || len(f.requests) != 4 {
		t.Fatalf("slept %v, attempts %d, requests %v; want %v and 4", c.slept, rep.Attempts, f.requests, want)
	}

	// A custom ladder with ignored entries.
	c = newClock()
	r = f.refresher(t, t.TempDir(), c)
	r.Options.Resilience.RetryDelays = []Duration{0, Duration(3 * time.Second), Duration(-time.Second), Duration(7 * time.Second)}
	r.Refresh(context.Background())
	if want := []time.Duration{3 * time.Second, 7 * time.Second}; !reflect.DeepEqual(c.slept, want) {
		t.Fatalf("slept %v, want %v", c.slept, want)
	}

	// enableRetries false fails fast.
	c = newClock()
	r = f.refresher(t, t.TempDir(), c)
	no := false
	r.Options.Resilience.EnableRetries = &no
	rep, _ = r.Refresh(context.Background())
	if rep.Attempts != 1 || len(c.slept) != 0 {
		t.Fatalf("retries off: %d attempts, slept %v", rep.Attempts, c.slept)
	}

	// The issuer comes back during the ladder.
	c = newClock()
	r = f.refresher(t, t.TempDir(), c)
	r.Sleep = func(ctx context.Context, d time.Duration) error {
		if len(c.slept) == 1 {
			f.set(func(f *fakeIssuer) { f.status = 0 })
		}
		return c.Sleep(ctx, d)
	}
	rep, err = r.Refresh(context.Background())
	if err != nil || rep.Attempts != 3 || !rep.Fetched {
		t.Fatalf("recovering issuer: %+v, %v", rep, err)
	}
}

func TestRefreshOfflineFallback(t *testing.T) {
	f := newFakeIssuer(t)
	c := newClock()
	root := t.TempDir()
	r := f.refresher(t, root, c)
	if _, err := r.Refresh(context.Background()); err != nil { // 12:00:00, max-age 300
		t.Fatal(err)
	}
	f.Close() // the issuer is down: connection refused

	// 12:05:00 + 8 s of ladder: within tolerance.
	c.Advance(5 * time.Minute)
	rep, err := r.Refresh(context.Background())
	if err != nil {
		t.Fatalf("within tolerance: %v", err)
	}
	if !rep.FellBack || rep.Status.State != WithinTolerance || rep.Status.Remaining != 10*time.Minute-8*time.Second || rep.FetchErr == nil {
		t.Fatalf("within tolerance: %+v", rep)
	}
	if md, err := Load(rep.Dir); err != nil || !md.Meta.FetchedAt.Equal(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("cache not kept as it was: %+v, %v", md.Meta, err)
	}

	// 12:15:16: beyond lifetime + tolerance.
	c.Advance(10 * time.Minute)
	rep, err = r.Refresh(context.Background())
	if !errors.Is(err, ErrMetadataExpired) || !errors.Is(err, errdef.ErrExpired) || rep.Status.State != Expired || rep.FellBack {
		t.Fatalf("beyond tolerance: %+v, %v", rep, err)
	}
	if !strings.Contains(err.Error(), "offline tolerance") {
		t.Fatalf("message: %v", err)
	}

	// Fallback off: a failed refresh is an error even while fresh.
	c2 := newClock()
	c2.t = c.t.Add(-15*time.Minute - 16*time.Second + time.Minute)
	r.Now, r.Sleep = c2.Now, c2.Sleep
	off := false
	r.Options.Resilience.AllowOfflineCacheFallback = &off
	rep, err = r.Refresh(context.Background())
	if !errors.Is(err, ErrUnreachable) || rep.FellBack {
		t.Fatalf("fallback off: %+v, %v", rep, err)
	}
}

func TestParseMaxAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                        -1,
		"public, max-age=60":      time.Minute,
		"max-age=99999999":        MaxCacheLifetime,
		"no-store":                0,
		"max-age=abc":             0,
		"public, max-age=\"120\"": 2 * time.Minute,
		"no-cache, max-age=3600":  0,
	} {
		var vals []string
		if in != "" {
			vals = []string{in}
		}
		if got := parseMaxAge(vals); got != want {
			t.Errorf("parseMaxAge(%q) = %v, want %v", in, got, want)
		}
	}
}

// Without Cache-Control the configured lifetime applies; a hanging issuer is
// a transient failure (the client's timeout) and is retried.
func TestRefreshDefaultLifetimeAndHang(t *testing.T) {
	f := newFakeIssuer(t)
	f.set(func(f *fakeIssuer) { f.maxAge = -1 })
	c := newClock()
	r := f.refresher(t, t.TempDir(), c)
	r.Options.CacheLifetime = Duration(7 * time.Minute)
	rep, err := r.Refresh(context.Background())
	if err != nil || rep.Meta.Lifetime() != 7*time.Minute {
		t.Fatalf("default lifetime: %+v, %v", rep.Meta, err)
	}

	hang := make(chan struct{})
	defer close(hang)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	c = newClock()
	r = &Refresher{Options: f.options(), Root: t.TempDir(), Now: c.Now, Sleep: c.Sleep,
		Client: &http.Client{Timeout: 50 * time.Millisecond}}
	r.Options.Issuer = slow.URL
	rep, err = r.Refresh(context.Background())
	if !errors.Is(err, ErrUnreachable) || rep.Attempts != 4 {
		t.Fatalf("hanging issuer: %d attempts, %v", rep.Attempts, err)
	}
}

// The keys a refresh parsed stand in for a JWKS only when it is the same
// bytes: a cache another process rewrote meanwhile (other keys, or a JWKS
// that does not parse) is parsed afresh, with ParseJWKS's errors.
func TestParsedJWKSOnlyForTheSameBytes(t *testing.T) {
	keys := issuerKeys(t)
	b := jwksOf(keys...)
	ks, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	p := &parsedJWKS{jwks: b, keys: ks}
	if got, err := p.keysOf(append([]byte(nil), b...)); err != nil || !reflect.DeepEqual(got.IDs(), []string{"rs", "ps", "es", "ed"}) {
		t.Errorf("same bytes: %v %v", got.IDs(), err)
	}
	if got, err := p.keysOf(jwksOf(keys[2])); err != nil || !reflect.DeepEqual(got.IDs(), []string{"es"}) {
		t.Errorf("rotated JWKS: %v %v, want the new keys", got.IDs(), err)
	}
	if _, err := p.keysOf([]byte(`{"keys":[{"kty":"oct","kid":"x","k":"c2VjcmV0"}]}`)); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "private or symmetric") {
		t.Errorf("a symmetric key behind the parsed set: %v", err)
	}
	var none *parsedJWKS
	if got, err := none.keysOf(b); err != nil || got.Len() != 4 {
		t.Errorf("nothing parsed: %d %v", got.Len(), err)
	}
}
