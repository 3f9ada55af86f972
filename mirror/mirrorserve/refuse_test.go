package mirrorserve

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/authority"
)

// refuseIssuer is an Authority on loopback serving discovery and a JWKS of
// one Ed25519 key, and minting tokens with it.
type refuseIssuer struct {
	*httptest.Server
	key ed25519.PrivateKey
}

func newRefuseIssuer(t *testing.T) *refuseIssuer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &refuseIssuer{key: key}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

func (f *refuseIssuer) options() authority.Options {
	return authority.Options{Enabled: true, Issuer: f.URL, Audiences: []string{"api://concelier"}, AllowLoopbackHTTP: true}
}

// token is a token of the issuer with scope, expiring at exp.
func (f *refuseIssuer) token(t *testing.T, scope string, exp time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: f.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"iss": f.URL, "sub": "ops@example.com", "client_id": "concelier-cli", "aud": "api://concelier",
		"exp": exp.Unix(), "iat": exp.Add(-10 * time.Minute).Unix(), "scope": scope})
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refusalHeaders are the headers of a refusal a client looks at.
var refusalHeaders = []string{"WWW-Authenticate", "Retry-After", "Cache-Control", "Content-Type", "X-Content-Type-Options"}

// A protected mirror route refuses the way every other protected route of
// serve does (authority.Middleware over the same guard): the same status,
// challenge, Retry-After, no-store and body; the mirror adds only its Basic
// challenge on a 401 when an htpasswd file applies. What a client sees:
// no token: 401 with a plain Bearer challenge (and Basic); a bad or expired
// token: 401 error="invalid_token" with the reason; a token without the
// scope: 403 error="insufficient_scope"; no usable Authority metadata: 503
// with Retry-After. No refusal may be cached or carry the file's ETag.
func TestRefusalsAsServe(t *testing.T) {
	f := newRefuseIssuer(t)
	g, err := authority.NewGuard(f.options(), t.TempDir(), authority.GuardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A guard whose cache holds nothing: the Authority is unavailable.
	down, err := authority.NewGuard(f.options(), t.TempDir(), authority.GuardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := fixture(t)
	cfg := Config{
		Concelier: Part{RequireAuthentication: true, Htpasswd: writeHtpasswd(t, bcryptLine(t, "ops", "s3cret"))},
		Excititor: Part{RequireAuthentication: true},
	}
	now := time.Now()
	good := f.token(t, ConcelierScope, now.Add(5*time.Minute))
	const cpath = "/concelier/exports/mirror/primary/bundle.json"
	const xpath = "/excititor/mirror/domains"
	type want struct {
		status  int
		chal    []string // WWW-Authenticate, in order; a trailing "…" entry is a prefix
		retry   string
		reason  string
		invalid bool // the Bearer challenge carries error="invalid_token"
	}
	basicChal := `Basic realm="offkit mirror"`
	for _, c := range []struct {
		name   string
		guard  *authority.Guard
		path   string
		scope  string
		auth   string
		want   want
		basic  bool
		wantOK bool
	}{
		{name: "no token, Basic on", guard: g, path: cpath, scope: ConcelierScope, basic: true,
			want: want{status: 401, chal: []string{`Bearer realm="offkit"`, basicChal}, reason: "no token"}},
		{name: "no token, Basic off", guard: g, path: xpath, scope: ExcititorScope,
			want: want{status: 401, chal: []string{`Bearer realm="offkit"`}, reason: "no token"}},
		{name: "malformed token", guard: g, path: cpath, scope: ConcelierScope, auth: "Bearer not.a.jwt", basic: true,
			want: want{status: 401, invalid: true}},
		{name: "expired token", guard: g, path: cpath, scope: ConcelierScope, auth: "Bearer " + f.token(t, ConcelierScope, now.Add(-time.Hour)), basic: true,
			want: want{status: 401, invalid: true, reason: "token expired at"}},
		{name: "expired token, Basic off", guard: g, path: xpath, scope: ExcititorScope, auth: "Bearer " + f.token(t, ExcititorScope, now.Add(-time.Hour)),
			want: want{status: 401, invalid: true, reason: "token expired at"}},
		{name: "missing scope", guard: g, path: xpath, scope: ExcititorScope, auth: "Bearer " + good,
			want: want{status: 403, chal: []string{`Bearer realm="offkit", error="insufficient_scope", error_description="token lacks the required scope excititor.mirror.read"`}, reason: "excititor.mirror.read"}},
		{name: "authority unavailable", guard: down, path: cpath, scope: ConcelierScope, auth: "Bearer " + good, basic: true,
			want: want{status: 503, retry: "60", reason: "no usable authority metadata of " + f.URL}},
		{name: "good token", guard: g, path: cpath, scope: ConcelierScope, auth: "Bearer " + good, wantOK: true},
	} {
		h := newHandler(t, src, Options{Tokens: c.guard, Config: cfg})
		r := req{path: c.path, remote: "192.0.2.7:5"}
		if c.auth != "" {
			r.hdr = map[string]string{"Authorization": c.auth}
		}
		w := do(h, r)
		if c.wantOK {
			if w.Code != 200 || w.Header().Get("Cache-Control") != DownloadCacheControl {
				t.Errorf("%s: %d Cache-Control %q", c.name, w.Code, w.Header().Get("Cache-Control"))
			}
			continue
		}
		hd := w.Header()
		if w.Code != c.want.status {
			t.Errorf("%s: status %d, want %d (%q)", c.name, w.Code, c.want.status, w.Body)
			continue
		}
		ch := hd.Values("WWW-Authenticate")
		switch {
		case c.want.invalid:
			wantN := 1
			if c.basic {
				wantN = 2
			}
			if len(ch) != wantN || !strings.HasPrefix(ch[0], `Bearer realm="offkit", error="invalid_token", error_description="`) ||
				(c.basic && ch[1] != basicChal) {
				t.Errorf("%s: WWW-Authenticate %q", c.name, ch)
			}
		case strings.Join(ch, "\n") != strings.Join(c.want.chal, "\n"):
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, ch, c.want.chal)
		}
		if got := hd.Get("Retry-After"); got != c.want.retry {
			t.Errorf("%s: Retry-After %q, want %q", c.name, got, c.want.retry)
		}
		if hd.Get("Cache-Control") != "no-store" || hd.Get("ETag") != "" || hd.Get("Last-Modified") != "" {
			t.Errorf("%s: a refusal a cache may keep: Cache-Control %q ETag %q", c.name, hd.Get("Cache-Control"), hd.Get("ETag"))
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %v", c.name, hd)
		}
		if !strings.Contains(w.Body.String(), c.want.reason) || strings.Contains(w.Body.String(), "{") {
			t.Errorf("%s: body %q, want the reason %q", c.name, w.Body, c.want.reason)
		}
		if tok := strings.TrimPrefix(c.auth, "Bearer "); len(tok) > 20 && (strings.Contains(w.Body.String(), tok) || strings.Contains(strings.Join(ch, " "), tok)) {
			t.Errorf("%s: the token leaks", c.name)
		}

		// The same request to a route authority.Middleware protects.
		mw := authority.Middleware(c.guard, c.path, []string{c.scope}, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("protected content\n"))
		}))
		m := do(mw, r)
		if m.Code != w.Code || m.Body.String() != w.Body.String() {
			t.Errorf("%s: mirror %d %q, Middleware %d %q", c.name, w.Code, w.Body, m.Code, m.Body)
		}
		for _, k := range refusalHeaders {
			got, mv := hd.Values(k), m.Header().Values(k)
			if k == "WWW-Authenticate" && c.basic && len(got) > 0 {
				got = got[:len(got)-1] // the mirror's Basic challenge
			}
			if strings.Join(got, "\n") != strings.Join(mv, "\n") {
				t.Errorf("%s: %s: mirror %q, Middleware %q", c.name, k, got, mv)
			}
		}
	}
}

// Refusals the mirror decides itself (Basic, header limits, no Authority)
// are answered the same way: 401 with the Bearer challenge (naming the
// error when a Bearer token was refused), Basic when on, never cached.
func TestMirrorRefusalsNotCached(t *testing.T) {
	src, _ := fixture(t)
	h := newHandler(t, src, Options{Config: Config{Concelier: Part{RequireAuthentication: true,
		Htpasswd: writeHtpasswd(t, bcryptLine(t, "ops", "s3cret"))}}})
	for _, auth := range []string{"", basic("ops", "nope"), "Bearer abc", "Negotiate abc", "Basic " + strings.Repeat("A", MaxAuthorization)} {
		w := do(h, req{path: "/concelier/exports/index.json", hdr: map[string]string{"Authorization": auth}})
		ch := w.Header().Values("WWW-Authenticate")
		// Only a Bearer token sent and refused is named invalid_token
		// (RFC 6750 §3.1: no error code for other credentials).
		okBearer := len(ch) > 0 && ch[0] == `Bearer realm="offkit"`
		if strings.HasPrefix(auth, "Bearer ") {
			okBearer = len(ch) > 0 && strings.HasPrefix(ch[0], `Bearer realm="offkit", error="invalid_token"`)
		}
		if w.Code != 401 || len(ch) != 2 || !okBearer || ch[1] != `Basic realm="offkit mirror"` {
			t.Errorf("%.20q: %d WWW-Authenticate %q", auth, w.Code, ch)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("ETag") != "" {
			t.Errorf("%.20q: Cache-Control %q ETag %q", auth, w.Header().Get("Cache-Control"), w.Header().Get("ETag"))
		}
	}
}

// A protected route's answers, served and refused, carry Vary:
// Authorization, so that a shared cache honouring the public directive
// keys them by the credentials and never hands a protected file to a
// client without any; an open route's answers do not.
func TestProtectedVaryAuthorization(t *testing.T) {
	src, _ := fixture(t)
	on := true
	h := newHandler(t, src, Options{Config: Config{Concelier: Part{
		Domains: []Domain{{ID: "primary", RequireAuthentication: &on,
			Htpasswd: writeHtpasswd(t, bcryptLine(t, "alice", "wonder"))}},
	}}})
	ok := do(h, req{path: "/concelier/exports/mirror/primary/bundle.json", hdr: map[string]string{"Authorization": basic("alice", "wonder")}})
	if ok.Code != 200 || ok.Header().Get("Vary") != "Authorization" || ok.Header().Get("Cache-Control") != DownloadCacheControl {
		t.Errorf("protected 200: %d Vary %q Cache-Control %q", ok.Code, ok.Header().Get("Vary"), ok.Header().Get("Cache-Control"))
	}
	nm := do(h, req{path: "/concelier/exports/mirror/primary/bundle.json", hdr: map[string]string{"Authorization": basic("alice", "wonder"), "If-None-Match": ok.Header().Get("ETag")}})
	if nm.Code != 304 || nm.Header().Get("Vary") != "Authorization" {
		t.Errorf("protected 304: %d Vary %q", nm.Code, nm.Header().Get("Vary"))
	}
	if w := get(h, "/concelier/exports/mirror/primary/bundle.json"); w.Code != 401 || w.Header().Get("Vary") != "Authorization" {
		t.Errorf("protected 401: %d Vary %q", w.Code, w.Header().Get("Vary"))
	}
	for _, p := range []string{"/concelier/exports/mirror/community/bundle.json", "/concelier/exports/index.json"} {
		if w := get(h, p); w.Code != 200 || w.Header().Get("Vary") != "" {
			t.Errorf("open %s: %d Vary %q", p, w.Code, w.Header().Get("Vary"))
		}
	}
}
