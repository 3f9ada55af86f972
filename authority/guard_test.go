package authority

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/internal/errdef"
)

const testRoute = "/concelier/exports/index.json"

// guardEnv is a Guard over a fake issuer on loopback, at a fake time, with
// a test route protected by Middleware and its audit lines in a buffer.
type guardEnv struct {
	t     *testing.T
	f     *fakeIssuer
	clock *fakeClock
	root  string
	g     *Guard
	h     http.Handler
	audit *syncBuffer
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// take returns what was written since the last take.
func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

func newGuardEnv(t *testing.T, mut func(*Options)) *guardEnv {
	f := newFakeIssuer(t)
	e := &guardEnv{t: t, f: f, clock: newClock(), root: t.TempDir(), audit: &syncBuffer{}, logs: &syncBuffer{}}
	o := f.options()
	o.BypassNetworks = []string{"10.9.0.0/16", "fd00:9::/32"}
	if mut != nil {
		mut(&o)
	}
	g, err := NewGuard(o, e.root, GuardConfig{Client: f.Client(), Now: e.clock.Now, Sleep: e.clock.Sleep,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	auditLog := slog.New(slog.NewTextHandler(e.audit, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	e.h = Middleware(g, testRoute, nil, auditLog)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "protected content\n")
	}))
	return e
}

func (e *guardEnv) token(k testKey, mut func(map[string]any)) string {
	now := e.clock.Now()
	c := map[string]any{
		"iss": e.f.URL, "sub": "ops@example.com", "aud": "api://concelier", "client_id": "concelier-cli",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "scope": "concelier.mirror.read",
	}
	if mut != nil {
		mut(c)
	}
	return sign(e.t, k.alg, k.signer, k.kid, "at+jwt", false, c)
}

// get sends GET testRoute from remote with the Authorization value auth
// ("" for none) through the Middleware.
func (e *guardEnv) get(remote, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "https://mirror.site.internal"+testRoute, nil)
	r.RemoteAddr = net.JoinHostPort(remote, "40000")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *guardEnv) refresh() Report {
	e.t.Helper()
	rep, err := e.g.Refresh(context.Background())
	if err != nil {
		e.t.Fatalf("refresh: %v", err)
	}
	return rep
}

func (e *guardEnv) issuerRequests() (disc, jwks int) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	return countPrefix(e.f.requests, DiscoveryPath), countPrefix(e.f.requests, "/jwks")
}

// auditLine is the runbook part of the expected audit line.
func auditLine(status, subject, client, scopes, bypass, remote string) string {
	return "logger=" + AuditLogger + " route=" + testRoute + " status=" + status + " subject=" + subject + " clientId=" + client +
		" scopes=" + scopes + " bypass=" + bypass + " remote=" + remote + " "
}

func outcomeCount(g *Guard, o Outcome) float64 {
	return metricValue(g, "offkit_authority_requests_total", o.String())
}

// metricValue is the value of the guard's metric name (with the outcome
// label, when given) as a scrape of /metrics shows it; -1 when absent.
func metricValue(g *Guard, name, outcome string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() != outcome {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

func writeFile(name, data string) error { return os.WriteFile(name, []byte(data), 0o644) }

// A fresh guard on an empty cache refuses tokens with 503 and is not ready,
// naming the issuer; one refresh later tokens pass, each request is one
// audit line in the runbook's form, and /metrics shows the cache.
func TestGuardFreshFetch(t *testing.T) {
	e := newGuardEnv(t, nil)
	keys := issuerKeys(t)
	if err := e.g.Ready(); err == nil || !strings.Contains(err.Error(), e.f.URL) || !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("Ready without a cache: %v", err)
	}
	w := e.get("10.1.4.7", "Bearer "+e.token(keys[0], nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), e.f.URL) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("without a cache: %d %q", w.Code, w.Body)
	}
	if got := e.audit.take(); !strings.Contains(got, auditLine("503", "(anonymous)", "(none)", "(none)", "False", "10.1.4.7")+"outcome=expired_metadata") {
		t.Fatalf("audit: %s", got)
	}
	// Bypass needs no metadata.
	if w := e.get("10.9.1.1", ""); w.Code != 200 {
		t.Fatalf("bypass without a cache: %d %q", w.Code, w.Body)
	}
	e.audit.take()

	rep := e.refresh()
	if !rep.Fetched || e.g.Ready() != nil {
		t.Fatalf("after refresh: %+v, ready %v", rep, e.g.Ready())
	}
	for _, k := range keys {
		w := e.get("10.1.4.7", "Bearer "+e.token(k, nil))
		if w.Code != 200 || w.Body.String() != "protected content\n" {
			t.Fatalf("%s: %d %q", k.kid, w.Code, w.Body)
		}
		if got := e.audit.take(); !strings.Contains(got, auditLine("200", "ops@example.com", "concelier-cli", "concelier.mirror.read", "False", "10.1.4.7")+"outcome=ok") {
			t.Fatalf("audit: %s", got)
		}
	}
	if n := outcomeCount(e.g, OK); n != float64(len(keys)) {
		t.Fatalf("ok count %v", n)
	}
	e.clock.Advance(100 * time.Second)
	for name, want := range map[string]float64{"offkit_authority_cache_age_seconds": 100, "offkit_authority_validity_remaining_seconds": 800,
		"offkit_authority_metadata_expired": 0, "offkit_authority_refresh_attempts_total": 1, "offkit_authority_refresh_failures_total": 0} {
		if got := metricValue(e.g, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// The outcomes a user sees through the Middleware: 401 with
// WWW-Authenticate (invalid_token once a token was sent), 403 for a scope,
// bypass=True from a bypass network, anonymous fallback on and off; each
// with its audit line, none leaking the token.
func TestGuardMiddlewareOutcomes(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.refresh()
	keys := issuerKeys(t)
	cases := []struct {
		name, remote, auth string
		status             int
		wwwAuth, line      string
	}{
		{"no token", "10.1.4.7", "", 401, `Bearer realm="offkit"`,
			auditLine("401", "(anonymous)", "(none)", "(none)", "False", "10.1.4.7") + "outcome=no_token"},
		{"bad token", "10.1.4.7", "Bearer not.a.jwt", 401, `error="invalid_token"`,
			auditLine("401", "(anonymous)", "(none)", "(none)", "False", "10.1.4.7") + "outcome=bad_token"},
		{"bad token from a bypass network", "10.9.0.5", "Bearer not.a.jwt", 401, `error="invalid_token"`,
			auditLine("401", "(anonymous)", "(none)", "(none)", "False", "10.9.0.5") + "outcome=bad_token"},
		{"expired token", "10.1.4.7", "Bearer " + e.token(keys[0], func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Hour).Unix() }), 401, `error="invalid_token"`,
			auditLine("401", "(anonymous)", "(none)", "(none)", "False", "10.1.4.7") + "outcome=bad_token"},
		{"missing scope", "10.1.4.7", "Bearer " + e.token(keys[0], func(c map[string]any) { c["scope"] = "other" }), 403, `error="insufficient_scope"`,
			auditLine("403", "ops@example.com", "concelier-cli", "other", "False", "10.1.4.7") + "outcome=scope"},
		{"bypass v4", "10.9.0.5", "", 200, "",
			auditLine("200", "(anonymous)", "(none)", "(none)", "True", "10.9.0.5") + "outcome=bypass"},
		{"bypass v6", "fd00:9::1", "", 200, "",
			auditLine("200", "(anonymous)", "(none)", "(none)", "True", "fd00:9::1") + "outcome=bypass"},
	}
	for _, c := range cases {
		w := e.get(c.remote, c.auth)
		got := e.audit.take()
		if w.Code != c.status || !strings.Contains(w.Header().Get("WWW-Authenticate"), c.wwwAuth) || !strings.Contains(got, c.line) {
			t.Errorf("%s: %d %q WWW-Authenticate %q\naudit %s", c.name, w.Code, w.Body, w.Header().Get("WWW-Authenticate"), got)
		}
		if c.status != 200 && (w.Body.Len() < 5 || w.Body.String() == "protected content\n") {
			t.Errorf("%s: refusal without a reason: %q", c.name, w.Body)
		}
		if tok := strings.TrimPrefix(c.auth, "Bearer "); len(tok) > 20 && (strings.Contains(got, tok) || strings.Contains(w.Body.String(), tok)) {
			t.Errorf("%s: the token leaks", c.name)
		}
		if strings.Count(got, "\n") != 1 {
			t.Errorf("%s: %d audit lines", c.name, strings.Count(got, "\n"))
		}
	}

	anon := newGuardEnv(t, func(o *Options) { o.AllowAnonymousFallback = true })
	anon.refresh()
	w := anon.get("10.1.4.7", "")
	if got := anon.audit.take(); w.Code != 200 || !strings.Contains(got, auditLine("200", "(anonymous)", "(none)", "(none)", "False", "10.1.4.7")+"outcome=anonymous") {
		t.Fatalf("anonymous fallback: %d %s", w.Code, got)
	}
	if w := anon.get("10.1.4.7", "Bearer not.a.jwt"); w.Code != 401 {
		t.Fatalf("anonymous fallback rescued a bad token: %d", w.Code)
	}
	if outcomeCount(anon.g, Anonymous) != 1 || outcomeCount(anon.g, BadToken) != 1 {
		t.Fatal("outcome counts")
	}
}

// A key rotation is picked up through the unknown kid: one refresh, then
// the token passes. A storm of tokens with unknown kids fetches at most once
// a minute.
func TestGuardRotationAndStorm(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.refresh()
	genKeys(t)
	rotated := testKey{"rotated", jose.RS256, rsaKey2}
	e.f.rotate(rotated)
	d0, j0 := e.issuerRequests()
	if w := e.get("10.1.4.7", "Bearer "+e.token(rotated, nil)); w.Code != 200 {
		t.Fatalf("rotated key: %d %q", w.Code, w.Body)
	}
	if d, j := e.issuerRequests(); d != d0+1 || j != j0+1 {
		t.Fatalf("rotation fetched discovery %d and JWKS %d times", d-d0, j-j0)
	}
	// The old key is gone from the JWKS: its tokens are now refused.
	if w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil)); w.Code != 401 {
		t.Fatalf("retired key: %d", w.Code)
	}

	// The storm: a minute later, 200 concurrent tokens with kids nobody has.
	e.clock.Advance(61 * time.Second)
	storm := func() {
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := e.token(testKey{"ghost-" + itoa(i), jose.ES256, ecKey2}, nil)
				if w := e.get("10.1.4.7", "Bearer "+tok); w.Code != 401 {
					t.Errorf("ghost kid: %d", w.Code)
				}
			}()
		}
		wg.Wait()
	}
	d0, _ = e.issuerRequests()
	storm()
	if d, _ := e.issuerRequests(); d != d0+1 {
		t.Fatalf("a storm of unknown kids fetched discovery %d times, want 1", d-d0)
	}
	e.clock.Advance(30 * time.Second)
	storm()
	if d, _ := e.issuerRequests(); d != d0+1 {
		t.Fatalf("within the minute: %d fetches", d-d0)
	}
	e.clock.Advance(31 * time.Second)
	storm()
	if d, _ := e.issuerRequests(); d != d0+2 {
		t.Fatalf("after the minute: %d fetches, want 2", d-d0)
	}
	e.audit.take()
}

// The issuer goes down: within tolerance tokens pass; beyond, protected
// routes answer 503 naming the issuer and /readyz fails naming it; the
// issuer back, the next refresh recovers without restart.
func TestGuardIssuerDownToleranceAndBack(t *testing.T) {
	e := newGuardEnv(t, nil) // max-age 300, tolerance 10 min
	e.refresh()
	// What serve's /readyz shows of the guard (cmd/offkit's serve test
	// checks the real endpoint).
	readyz := func() (int, string) {
		if err := e.g.Ready(); err != nil {
			return 503, "authority: " + err.Error()
		}
		return 200, "ready"
	}
	e.f.set(func(f *fakeIssuer) { f.status = http.StatusBadGateway })
	e.clock.Advance(6 * time.Minute)
	rep, err := e.g.Refresh(context.Background())
	if err != nil || !rep.FellBack || rep.Attempts != 4 {
		t.Fatalf("issuer down within tolerance: %+v %v", rep, err)
	}
	if w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil)); w.Code != 200 {
		t.Fatalf("within tolerance: %d %q", w.Code, w.Body)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("readyz within tolerance: %d %s", code, body)
	}
	if n := metricValue(e.g, "offkit_authority_refresh_failures_total", ""); n != 1 {
		t.Fatalf("failures %v", n)
	}

	e.clock.Advance(9*time.Minute + 1*time.Second) // 15m01s after the fetch; the ladder slept 8 s more
	if _, err := e.g.Refresh(context.Background()); !errors.Is(err, ErrMetadataExpired) {
		t.Fatalf("refresh beyond tolerance: %v", err)
	}
	w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), e.f.URL) || !strings.Contains(w.Body.String(), "tolerance") {
		t.Fatalf("beyond tolerance: %d %q", w.Code, w.Body)
	}
	if got := e.audit.take(); !strings.Contains(got, "status=503") || !strings.Contains(got, "outcome=expired_metadata") {
		t.Fatalf("audit: %s", got)
	}
	if code, body := readyz(); code != 503 || !strings.Contains(body, "authority") || !strings.Contains(body, e.f.URL) {
		t.Fatalf("readyz beyond tolerance: %d %s", code, body)
	}
	if got := metricValue(e.g, "offkit_authority_metadata_expired", ""); got != 1 {
		t.Fatalf("offkit_authority_metadata_expired = %v", got)
	}

	// The issuer is back: a refresh recovers, same process, same handler.
	e.f.set(func(f *fakeIssuer) { f.status = 0 })
	e.refresh()
	if w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil)); w.Code != 200 {
		t.Fatalf("issuer back: %d %q", w.Code, w.Body)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("readyz after recovery: %d %s", code, body)
	}
}

// A refresh by another process (`offkit authority refresh`, or an install
// importing a snapshot) is picked up from the cache files, without restart,
// within the reload interval.
func TestGuardPicksUpOtherProcess(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.refresh()
	e.clock.Advance(20 * time.Minute)
	if e.g.Ready() == nil {
		t.Fatal("ready beyond tolerance")
	}
	genKeys(t)
	rotated := testKey{"rotated", jose.ES256, ecKey2}
	e.f.rotate(rotated)
	other := e.f.refresher(t, e.root, e.clock)
	if _, err := other.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	d0, _ := e.issuerRequests()
	e.clock.Advance(DefaultReloadInterval)
	if err := e.g.Ready(); err != nil {
		t.Fatalf("after another process refreshed: %v", err)
	}
	if w := e.get("10.1.4.7", "Bearer "+e.token(rotated, nil)); w.Code != 200 {
		t.Fatalf("the other process's keys: %d %q", w.Code, w.Body)
	}
	if d, _ := e.issuerRequests(); d != d0 {
		t.Fatal("the guard fetched instead of reading the cache")
	}
	// A damaged cache never replaces the snapshot in use.
	if err := writeFile(e.g.Dir()+"/"+MetaFile, "{garbage"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultReloadInterval)
	if w := e.get("10.1.4.7", "Bearer "+e.token(rotated, nil)); w.Code != 200 || e.g.Ready() != nil {
		t.Fatalf("after the cache was damaged: %d %q", w.Code, w.Body)
	}
}

// ETag revalidation: a refresh of unchanged documents sends If-None-Match,
// gets 304, and only moves fetchedAt.
func TestGuardRevalidates(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.refresh()
	e.clock.Advance(5 * time.Minute)
	rep := e.refresh()
	if !rep.Revalidated || rep.Fetched || !rep.Meta.FetchedAt.Equal(e.clock.Now()) {
		t.Fatalf("second refresh: %+v", rep)
	}
	e.f.mu.Lock()
	conds := append([]string(nil), e.f.condition...)
	e.f.mu.Unlock()
	if len(conds) != 4 || conds[2] == "" || conds[3] == "" {
		t.Fatalf("If-None-Match sent: %q", conds)
	}
	meta, st, ok := e.g.Status()
	if !ok || !meta.FetchedAt.Equal(e.clock.Now()) || st.State != Fresh {
		t.Fatalf("status after 304: %+v %+v", meta, st)
	}
}

// Discovery naming another issuer is refused: the refresh fails with
// ErrInvalid, the cache is untouched, and without a cache tokens get 503.
func TestGuardRefusesMismatchedIssuer(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.f.set(func(f *fakeIssuer) { f.issuer = "https://evil.example" })
	if _, err := e.g.Refresh(context.Background()); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("mismatched issuer: %v", err)
	}
	if w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil)); w.Code != 503 {
		t.Fatalf("token without metadata: %d", w.Code)
	}
	if e.g.Ready() == nil {
		t.Fatal("ready without metadata")
	}
	// With a good cache, a later mismatch keeps it.
	e.f.set(func(f *fakeIssuer) { f.issuer = f.URL })
	e.refresh()
	e.f.set(func(f *fakeIssuer) { f.issuer = "https://evil.example" })
	if _, err := e.g.Refresh(context.Background()); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("mismatch with a cache: %v", err)
	}
	if w := e.get("10.1.4.7", "Bearer "+e.token(issuerKeys(t)[0], nil)); w.Code != 200 {
		t.Fatalf("the good cache was dropped: %d", w.Code)
	}
}

// Run refreshes at the cache lifetime, retries a failure later (counted),
// and stops with its context. The clock is injected: nothing sleeps.
func TestGuardRun(t *testing.T) {
	e := newGuardEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	sleeps := 0
	e.g.cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		sleeps++
		switch sleeps {
		case 2: // the second lifetime runs: the issuer fails from now on
			e.f.set(func(f *fakeIssuer) { f.status = 500 })
		case 8:
			cancel()
		}
		e.clock.Advance(d)
		return ctx.Err()
	}
	done := make(chan struct{})
	go func() { e.g.Run(ctx); close(done) }()
	<-done
	// No cache: refresh at once (no wait); then wait the lifetime (300 s)
	// and refresh, twice; the failing refresh climbs the ladder (1, 2, 5 s)
	// and the next one waits RetryAfterFailure.
	want := []time.Duration{300 * time.Second, 300 * time.Second, time.Second, 2 * time.Second, 5 * time.Second,
		DefaultRetryAfterFailure, time.Second, 2 * time.Second}
	if len(waits) < len(want) {
		t.Fatalf("waits %v", waits)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if n := metricValue(e.g, "offkit_authority_refresh_failures_total", ""); n < 1 {
		t.Fatalf("failures not counted: %v", n)
	}
	if !strings.Contains(e.logs.take(), "authority issuer unreachable") {
		t.Fatal("failure not logged")
	}
}

// The guard builds the request as the client addressed it: DPoP's htu is
// https over TLS with the Host header, and behind a trusted proxy the
// proxy's X-Forwarded-Proto/-Host/-For; the same headers from anyone else
// are ignored (a spoofed X-Forwarded-For does not reach a bypass network).
func TestGuardDPoPAndProxies(t *testing.T) {
	e := newGuardEnv(t, func(o *Options) { o.TrustedProxies = []string{"10.0.0.1/32"} })
	e.refresh()
	genKeys(t)
	holder := testKey{"", jose.ES256, ecKey2}
	tok := e.token(issuerKeys(t)[0], func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(ecKey2)} })
	const u = "https://mirror.site.internal" + testRoute
	n := 0
	proof := func(htu string) string {
		n++
		ath := sha256.Sum256([]byte(tok))
		return sign(t, holder.alg, holder.signer, "", "dpop+jwt", true, map[string]any{"jti": "p" + itoa(n), "htm": "GET", "htu": htu,
			"iat": e.clock.Now().Unix(), "ath": b64(ath[:])})
	}
	send := func(peer, host string, tlsConn bool, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://"+host+testRoute, nil)
		r.RemoteAddr = net.JoinHostPort(peer, "5000")
		r.TLS = nil
		if tlsConn {
			r.TLS = &tls.ConnectionState{}
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	same := proof(u)
	cases := []struct {
		name       string
		peer, host string
		tls        bool
		hdr        map[string]string
		want       int
	}{
		{"DPoP over TLS", "10.1.4.7", "mirror.site.internal", true, map[string]string{"Authorization": "DPoP " + tok, "DPoP": same}, 200},
		{"the same proof again", "10.1.4.7", "mirror.site.internal", true, map[string]string{"Authorization": "DPoP " + tok, "DPoP": same}, 401},
		{"proof for https, request over http", "10.1.4.7", "mirror.site.internal", false, map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(u)}, 401},
		{"proof for another host", "10.1.4.7", "mirror.site.internal", true, map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof("https://other.internal" + testRoute)}, 401},
		{"bound token as Bearer", "10.1.4.7", "mirror.site.internal", true, map[string]string{"Authorization": "Bearer " + tok}, 401},
		{"behind the trusted proxy", "10.0.0.1", "backend:8080", false, map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(u),
			"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mirror.site.internal"}, 200},
		{"forwarding headers from an untrusted peer", "10.1.4.7", "backend:8080", false, map[string]string{"Authorization": "DPoP " + tok, "DPoP": proof(u),
			"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mirror.site.internal"}, 401},
		{"X-Forwarded-For from the trusted proxy", "10.0.0.1", "mirror.site.internal", false, map[string]string{"X-Forwarded-For": "10.9.0.5"}, 200},
		{"X-Forwarded-For spoofed", "10.1.4.7", "mirror.site.internal", false, map[string]string{"X-Forwarded-For": "10.9.0.5"}, 401},
	}
	for _, c := range cases {
		w := send(c.peer, c.host, c.tls, c.hdr)
		got := e.audit.take()
		if w.Code != c.want {
			t.Errorf("%s: %d %q, want %d\n%s", c.name, w.Code, w.Body, c.want, got)
		}
		if c.want == 401 && c.hdr["Authorization"] != "" && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, w.Header().Get("WWW-Authenticate"))
		}
	}
	if got := outcomeCount(e.g, BoundToken); got != 5 {
		t.Errorf("bound_token count %v, want 5", got)
	}
	// The audit line's remote is the forwarded client behind the proxy.
	send("10.0.0.1", "mirror.site.internal", false, map[string]string{"X-Forwarded-For": "10.9.0.5, 10.0.0.1"})
	if got := e.audit.take(); !strings.Contains(got, "bypass=True remote=10.9.0.5 ") {
		t.Errorf("audit behind the proxy: %s", got)
	}
}

// A token with an unknown kid never waits for the background refresher's
// retry ladder: while it climbs the ladder, the request is answered at once.
func TestGuardUnknownKidDoesNotWaitForTheLadder(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.refresh()
	e.f.set(func(f *fakeIssuer) { f.status = 503 })
	inLadder, release := make(chan struct{}, 1), make(chan struct{})
	e.g.cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case inLadder <- struct{}{}:
		default:
		}
		<-release
		return nil
	}
	done := make(chan struct{})
	go func() { e.g.Refresh(context.Background()); close(done) }()
	<-inLadder
	genKeys(t)
	if w := e.get("10.1.4.7", "Bearer "+e.token(testKey{"ghost", jose.ES256, ecKey2}, nil)); w.Code != 401 {
		t.Errorf("unknown kid during the ladder: %d", w.Code)
	}
	close(release)
	<-done
}

// BenchmarkGuardCheck: the cost of one protected request's token check
// (signature, claims, metrics) for each key type the issuer publishes.
func BenchmarkGuardCheck(b *testing.B) {
	for _, k := range issuerKeys(b) {
		b.Run(k.kid, func(b *testing.B) {
			f := newFakeIssuer(b)
			clock := newClock()
			g, err := NewGuard(f.options(), b.TempDir(), GuardConfig{Client: f.Client(), Now: clock.Now, Sleep: clock.Sleep})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.Refresh(context.Background()); err != nil {
				b.Fatal(err)
			}
			now := clock.Now()
			tok := sign(b, k.alg, k.signer, k.kid, "at+jwt", false, map[string]any{"iss": f.URL, "sub": "ops@example.com", "aud": "api://concelier",
				"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "scope": "concelier.mirror.read"})
			r := httptest.NewRequest("GET", "https://mirror.site.internal"+testRoute, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if res := g.Check(r, nil); res.Outcome != OK {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}

// A refresh that succeeds but leaves a cache that does not load (another
// writer damaged it) is retried RetryAfterFailure later, not at once: no
// tight loop against the issuer.
func TestGuardRunNoTightLoop(t *testing.T) {
	e := newGuardEnv(t, nil)
	e.g.cfg.OnRefresh = func(Report, error) { writeFile(e.g.Dir()+"/"+MetaFile, "{damaged") }
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	e.g.cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 3 {
			cancel()
		}
		e.clock.Advance(d)
		return ctx.Err()
	}
	e.g.Run(ctx)
	if len(waits) != 3 || waits[0] != DefaultRetryAfterFailure || waits[1] != DefaultRetryAfterFailure {
		t.Fatalf("waits %v, want RetryAfterFailure each", waits)
	}
	if d, _ := e.issuerRequests(); d != 3 {
		t.Fatalf("%d fetches for 3 waits", d)
	}
}
