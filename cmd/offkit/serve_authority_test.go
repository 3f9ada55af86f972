package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/serve"
)

// tokenIssuer is a fake Authority on loopback that can also mint tokens.
type tokenIssuer struct {
	*httptest.Server
	key  ed25519.PrivateKey
	mu   sync.Mutex
	down bool
}

func newTokenIssuer(t *testing.T) *tokenIssuer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &tokenIssuer{key: key}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		switch r.URL.Path {
		case authority.DiscoveryPath:
			json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
		case "/jwks":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *tokenIssuer) token(t *testing.T, now time.Time, scope string) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: f.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"iss": f.URL, "sub": "ops@example.com", "client_id": "concelier-cli", "aud": "api://concelier",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "scope": scope})
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
	return tok
}

// serve.yaml's authority: is read with the runbook's keys (hh:mm:ss
// durations), and serve's wiring registers the guard's /readyz check
// (failing, naming the issuer, until metadata is usable) and metrics and
// starts its refresher, which fetches at once; a route protected with
// authority.Middleware answers 401 without a token and 200 with one.
func TestServeAuthorityWiring(t *testing.T) {
	f := newTokenIssuer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfgPath, []byte(`
listen: 127.0.0.1:0
authority:
  enabled: true
  allowAnonymousFallback: false
  issuer: "`+f.URL+`"
  audiences: ["api://concelier"]
  requiredScopes: ["concelier.mirror.read"]
  bypassNetworks: ["127.0.0.1/32", "::1/128"]
  tokenClockSkewSeconds: 60
  allowLoopbackHttp: true
  resilience:
    enableRetries: true
    retryDelays: ["00:00:01", "00:00:02", "00:00:05"]
    allowOfflineCacheFallback: true
    offlineCacheTolerance: "00:20:00"
`), 0o644)
	cfg, err := serve.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Authority.Resilience.Tolerance() != 20*time.Minute || len(cfg.Authority.Resilience.Delays()) != 3 {
		t.Fatalf("authority options: %+v", cfg.Authority)
	}
	var logs bytes.Buffer
	now := time.Now()
	a := &app{stdout: io.Discard, stderr: io.Discard, now: func() time.Time { return now },
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := serve.New(*cfg, a.log)
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	get := func(path, auth string) (int, string, http.Header) {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "10.1.4.7:5000"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String(), w.Header()
	}

	// A guard whose refresher cannot run yet: not ready, naming the issuer.
	g, err := authority.NewGuard(*cfg.Authority, root, authority.GuardConfig{Now: a.now})
	if err != nil {
		t.Fatal(err)
	}
	srv.Ready("authority", g.Ready)
	if code, body, _ := get("/readyz", ""); code != 503 || !strings.Contains(body, "authority: ") || !strings.Contains(body, f.URL) {
		t.Fatalf("/readyz without metadata: %d %q", code, body)
	}

	// The wiring: the refresher fetches at once.
	srv = serve.New(*cfg, a.log)
	guard, err := a.serveAuthority(ctx, srv, root, cfg.Authority)
	if err != nil || guard == nil {
		t.Fatal(err)
	}
	srv.Handle("GET /protected", "protected", authority.Middleware(guard, "/protected", nil, a.log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "content")
	})))
	deadline := time.Now().Add(20 * time.Second)
	for guard.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the refresher fetched nothing: %v\n%s", guard.Ready(), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body, _ := get("/readyz", ""); code != 200 {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	code, body, h := get("/protected", "")
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, "no token") {
		t.Fatalf("without a token: %d %q %v", code, body, h)
	}
	if code, body, _ := get("/protected", "Bearer "+f.token(t, now, "concelier.mirror.read")); code != 200 || body != "content" {
		t.Fatalf("with a token: %d %q", code, body)
	}
	_, metrics, _ := get("/metrics", "")
	for _, want := range []string{
		`offkit_authority_requests_total{issuer="` + f.URL + `",outcome="no_token"} 1`,
		`offkit_authority_requests_total{issuer="` + f.URL + `",outcome="ok"} 1`,
		`offkit_authority_metadata_expired{issuer="` + f.URL + `"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	audit := logs.String()
	for _, want := range []string{
		"logger=offkit.authorization.audit route=/protected status=401 subject=(anonymous) clientId=(none) scopes=(none) bypass=False remote=10.1.4.7",
		"logger=offkit.authorization.audit route=/protected status=200 subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read bypass=False remote=10.1.4.7",
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}

	// Off: no guard, no check.
	if g, err := a.serveAuthority(ctx, serve.New(serve.Config{}, nil), root, &authority.Options{}); g != nil || err != nil {
		t.Fatalf("disabled: %v %v", g, err)
	}
}

// A serve.yaml authority: that breaks a rule is refused with the key named.
func TestServeAuthorityConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no audience":    "authority: {enabled: true, issuer: https://authority.internal}",
		"bad cidr":       "authority: {enabled: true, issuer: https://authority.internal, audiences: [a], bypassNetworks: [10.0.0.0/99]}",
		"http issuer":    "authority: {enabled: true, issuer: http://authority.internal, audiences: [a]}",
		"bad timespan":   "authority: {resilience: {offlineCacheTolerance: '10 minutes'}}",
		"unknown key":    "authority: {enabled: true, clientSecret: hunter2}",
		"skew too large": "authority: {tokenClockSkewSeconds: 99999}",
	} {
		p := filepath.Join(dir, "serve.yaml")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := serve.LoadConfig(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
