package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
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
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/site"
)

// authorityRefreshSchema is schemas/output/authority-refresh.schema.json.
const authorityRefreshSchema = "output/authority-refresh.schema.json"

// refreshIssuer is a fake Authority on loopback: discovery and a JWKS with
// one Ed25519 key "k1", ETags, max-age=300; 304 to a matching If-None-Match.
type refreshIssuer struct {
	*httptest.Server
	mu          sync.Mutex
	issuer      string // discovery's issuer ("" = the server's URL)
	jwksURI     string // discovery's jwks_uri ("" = URL/jwks)
	requests    int
	notModified int
	jwks        []byte
}

func newRefreshIssuer(t *testing.T, tlsServer bool) *refreshIssuer {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	f := &refreshIssuer{jwks: jwks}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		var body []byte
		var tag string
		switch req.URL.Path {
		case authority.DiscoveryPath:
			iss, ju := f.issuer, f.jwksURI
			if iss == "" {
				iss = f.URL
			}
			if ju == "" {
				ju = f.URL + "/jwks"
			}
			body, _ = json.Marshal(map[string]string{"issuer": iss, "jwks_uri": ju})
			tag = `"disc-` + iss + ju + `"`
		case "/jwks":
			body, tag = f.jwks, `"jwks-1"`
		default:
			http.NotFound(w, req)
			return
		}
		w.Header().Set("ETag", tag)
		w.Header().Set("Cache-Control", "max-age=300")
		if req.Header.Get("If-None-Match") == tag {
			f.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	if tlsServer {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

func (f *refreshIssuer) set(fn func(f *refreshIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// newSiteRoot makes an empty site root.
func newSiteRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return root
}

// auditLines returns the authority-refresh records of ROOT/audit.log.
func auditLines(t *testing.T, root string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "audit.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit.log line %q: %v", l, err)
		}
		if m["event"] == "authority-refresh" {
			recs = append(recs, m)
		}
	}
	return recs
}

// offkit authority refresh against a fake issuer: a fresh fetch writes the
// cache and an audit line; the next revalidates (304); with the issuer down
// the cache is kept within tolerance (exit 0, a warning) and expires beyond
// it (exit 9); every run is one audit line.
func TestAuthorityRefresh(t *testing.T) {
	f := newRefreshIssuer(t, false)
	root := newSiteRoot(t)
	r := newRunner(t)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r.now = at
	args := []string{"authority", "refresh", "--root", root, "--issuer", f.URL, "--allow-loopback-http", "--retry-delays", "1ms,2ms"}

	// Fresh.
	v := r.jsonOK(authorityRefreshSchema, args...)
	if v["outcome"] != "fresh" || v["state"] != "fresh" || v["fetchedAt"] != "2026-11-30T12:00:00Z" ||
		v["validUntil"] != "2026-11-30T12:15:00Z" || v["keyIds"].([]any)[0] != "k1" || v["lifetimeSeconds"] != float64(300) {
		t.Fatalf("fresh refresh: %v", v)
	}
	dir, _ := authority.Dir(root, f.URL)
	md, err := authority.Load(dir)
	if err != nil || !md.Meta.FetchedAt.Equal(at) || md.Meta.JWKSETag != `"jwks-1"` {
		t.Fatalf("cache: %+v, %v", md.Meta, err)
	}
	recs := auditLines(t, root)
	if len(recs) != 1 || recs[0]["issuer"] != f.URL || recs[0]["outcome"] != "fresh" || recs[0]["fetchedAt"] != "2026-11-30T12:00:00Z" ||
		recs[0]["validUntil"] != "2026-11-30T12:15:00Z" || recs[0]["keyIds"].([]any)[0] != "k1" || recs[0]["time"] != "2026-11-30T12:00:00Z" {
		t.Fatalf("audit after the fresh refresh: %v", recs)
	}
	// status reads what refresh wrote.
	if out := r.ok("authority", "status", "--root", root).stdout; !strings.Contains(out, "state        fresh, 15m0s left") {
		t.Fatalf("status after refresh:\n%s", out)
	}

	// Revalidated: 304 to both requests, fetchedAt moves.
	r.now = at.Add(4 * time.Minute)
	out := r.ok(args...).stdout
	if !strings.Contains(out, "outcome      revalidated\ntries        1") || !strings.Contains(out, "fetched at   2026-11-30T12:04:00Z") {
		t.Fatalf("revalidation:\n%s", out)
	}
	if f.notModified != 2 {
		t.Fatalf("304s: %d, want 2", f.notModified)
	}
	if recs := auditLines(t, root); len(recs) != 2 || recs[1]["outcome"] != "revalidated" || recs[1]["fetchedAt"] != "2026-11-30T12:04:00Z" {
		t.Fatalf("audit after revalidation: %v", recs)
	}

	// The issuer goes down. Within tolerance (fetched 12:04, lifetime 5m,
	// tolerance 10m: usable until 12:19:00): exit 0 with a warning.
	f.Close()
	r.now = at.Add(12 * time.Minute)
	res := r.ok(args...)
	if !strings.Contains(res.stderr, "warning: issuer "+f.URL+" unreachable after 3 tries") ||
		!strings.Contains(res.stderr, "keeping the cached metadata fetched at 2026-11-30T12:04:00Z: within tolerance, usable until 2026-11-30T12:19:00Z (7m0s left)") {
		t.Fatalf("within tolerance: stderr\n%s", res.stderr)
	}
	if !strings.Contains(res.stdout, "outcome      kept-within-tolerance\ntries        3") {
		t.Fatalf("within tolerance: stdout\n%s", res.stdout)
	}
	v = r.jsonOK(authorityRefreshSchema, args...)
	if v["outcome"] != "kept-within-tolerance" || v["state"] != "within tolerance" || v["remainingSeconds"] != float64(420) || v["warning"] == nil {
		t.Fatalf("within tolerance --json: %v", v)
	}
	recs = auditLines(t, root)
	if len(recs) != 4 || recs[2]["outcome"] != "kept-within-tolerance" || recs[2]["fetchedAt"] != "2026-11-30T12:04:00Z" ||
		recs[2]["validUntil"] != "2026-11-30T12:19:00Z" || !strings.Contains(recs[2]["fetchError"].(string), "connection refused") {
		t.Fatalf("audit within tolerance: %v", recs)
	}

	// Beyond tolerance: exit 9, saying so.
	r.now = at.Add(19*time.Minute + time.Second)
	res = r.run(args...)
	if res.code != errdef.ExitExpired || !strings.Contains(res.stderr, "authority metadata expired") ||
		!strings.Contains(res.stderr, "past its lifetime 5m0s and the offline tolerance 10m0s") ||
		!strings.Contains(res.stdout, "state        expired") {
		t.Fatalf("beyond tolerance: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	recs = auditLines(t, root)
	if len(recs) != 5 || recs[4]["outcome"] != "expired" || recs[4]["validUntil"] != "2026-11-30T12:19:00Z" ||
		!strings.Contains(recs[4]["error"].(string), "authority metadata expired") || !strings.Contains(recs[4]["fetchError"].(string), "connection refused") {
		t.Fatalf("audit beyond tolerance: %v", recs)
	}
	// A longer tolerance keeps it usable (the same cache).
	r.ok(append(args, "--offline-cache-tolerance", "00:30:00")...)
	// The fallback off: an unreachable issuer fails even within tolerance.
	r.now = at.Add(10 * time.Minute)
	if res := r.run(append(args, "--no-offline-cache-fallback")...); res.code == 0 || !strings.Contains(res.stderr, "offline cache fallback off") {
		t.Fatalf("fallback off: exit %d\n%s", res.code, res.stderr)
	}
}

// An issuer whose discovery names another issuer, or an http jwks_uri, is
// refused (exit 11) and the cache is not written; the refusal is audited.
func TestAuthorityRefreshRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		mut  func(f *refreshIssuer)
		want string
	}{
		"wrong issuer":  {func(f *refreshIssuer) { f.issuer = "https://evil.example" }, `issuer "https://evil.example" is not the configured issuer`},
		"http jwks_uri": {func(f *refreshIssuer) { f.jwksURI = "http://keys.example/jwks" }, "jwks_uri"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newRefreshIssuer(t, false)
			f.set(c.mut)
			root := newSiteRoot(t)
			r := newRunner(t)
			res := r.run("authority", "refresh", "--root", root, "--issuer", f.URL, "--allow-loopback-http", "--retry-delays", "1ms")
			if res.code != errdef.ExitInvalid || !strings.Contains(res.stderr, c.want) {
				t.Fatalf("exit %d, stderr %s; want 11 and %q", res.code, res.stderr, c.want)
			}
			dir, _ := authority.Dir(root, f.URL)
			if _, err := authority.Load(dir); err == nil {
				t.Fatal("cache written from a refused document")
			}
			if recs := auditLines(t, root); len(recs) != 1 || recs[0]["outcome"] != "refused" || !strings.Contains(recs[0]["error"].(string), c.want) {
				t.Fatalf("audit: %v", recs)
			}
		})
	}
}

// A root that is not a site is exit 1; an http issuer off loopback, or
// loopback http without --allow-loopback-http, is exit 11; a missing
// --issuer is a bad command line.
func TestAuthorityRefreshCommandLine(t *testing.T) {
	f := newRefreshIssuer(t, false)
	r := newRunner(t)
	notSite := t.TempDir()
	r.fails(errdef.ExitNotFound, []string{"authority", "refresh", "--root", notSite, "--issuer", f.URL, "--allow-loopback-http"}, "not a site")
	if _, err := os.Stat(filepath.Join(notSite, "audit.log")); err == nil {
		t.Fatal("audit.log written in a folder that is not a site")
	}
	root := newSiteRoot(t)
	r.fails(errdef.ExitInvalid, []string{"authority", "refresh", "--root", root, "--issuer", f.URL}, "http is allowed only on loopback")
	r.fails(errdef.ExitInvalid, []string{"authority", "refresh", "--root", root, "--issuer", "http://authority.example", "--allow-loopback-http"}, "http is allowed only on loopback")
	r.fails(errdef.ExitInvalid, []string{"authority", "refresh", "--root", root}, "--issuer is required")

	// --config gives the issuer and the resilience block (under authority:,
	// as in serve.yaml); unknown keys are refused.
	cfg := writeFile(t, filepath.Join(t.TempDir(), "authority.yaml"), "authority:\n  issuer: "+f.URL+"\n  allowLoopbackHttp: true\n  resilience:\n    retryDelays: ['00:00:00.001']\n    offlineCacheTolerance: '00:20:00'\n")
	if out := r.ok("authority", "refresh", "--root", root, "--config", cfg).stdout; !strings.Contains(out, "outcome      fresh") || !strings.Contains(out, "lifetime 5m0s") {
		t.Fatalf("--config:\n%s", out)
	}
	bad := writeFile(t, filepath.Join(t.TempDir(), "bad.yaml"), "issuer: "+f.URL+"\nresilience:\n  retryDelay: ['1s']\n")
	r.fails(errdef.ExitInvalid, []string{"authority", "refresh", "--root", root, "--config", bad}, "retryDelay")
}

// TLS is verified: an issuer whose certificate no trusted CA signed is not
// reached; with its CA in --ca-file it is.
func TestAuthorityRefreshTLS(t *testing.T) {
	f := newRefreshIssuer(t, true)
	root := newSiteRoot(t)
	r := newRunner(t)
	args := []string{"authority", "refresh", "--root", root, "--issuer", f.URL, "--no-retries"}
	if res := r.run(args...); res.code == 0 || !strings.Contains(res.stderr, "certificate") {
		t.Fatalf("untrusted certificate: exit %d\n%s", res.code, res.stderr)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := r.ok(append(args, "--ca-file", ca)...).stdout; !strings.Contains(out, "outcome      fresh") {
		t.Fatalf("with --ca-file:\n%s", out)
	}
	notPEM := writeFile(t, filepath.Join(t.TempDir(), "x.pem"), "not a certificate\n")
	r.fails(errdef.ExitInvalid, append(args, "--ca-file", notPEM), "no PEM certificate")
}
