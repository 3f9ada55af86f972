package mirrorserve

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
)

// dirGen serves one generation folder; opens counts OpenGeneration calls.
type dirGen struct {
	dir, id string
	opens   atomic.Int64
}

func (d *dirGen) OpenGeneration() (*os.Root, string, error) {
	d.opens.Add(1)
	r, err := os.OpenRoot(d.dir)
	return r, d.id, err
}

const (
	oldID = "20251122T000000Z"
	newID = "20251123T000000Z"
)

var created = "2025-11-23T00:00:00Z"

// fixture writes a generation with two Concelier exports (primary and
// community) and one Excititor export (community).
func fixture(t *testing.T) (*dirGen, kittest.MirrorFiles) {
	t.Helper()
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(nil)
	files, err := kittest.MirrorGeneration(dir, key,
		kittest.MirrorExport{Kind: "concelier", ExportID: oldID, Created: "2025-11-22T00:00:00Z", Domains: []string{"primary", "community"}},
		kittest.MirrorExport{Kind: "concelier", ExportID: newID, Created: created, Domains: []string{"primary", "community"}},
		kittest.MirrorExport{Kind: "excititor", ExportID: newID, Created: created, Domains: []string{"community"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return &dirGen{dir: dir, id: "gen-1"}, files
}

func newHandler(t *testing.T, src Generations, o Options) *Handler {
	t.Helper()
	h, err := New(src, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type req struct {
	method, path, remote string
	hdr                  map[string]string
}

func do(h http.Handler, r req) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodGet
	}
	q := httptest.NewRequest(r.method, "http://mirror.test"+r.path, nil)
	if r.remote != "" {
		q.RemoteAddr = r.remote
	}
	for k, v := range r.hdr {
		if v == "" {
			continue
		}
		q.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, q)
	return w
}

func get(h http.Handler, p string) *httptest.ResponseRecorder { return do(h, req{path: p}) }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoutes(t *testing.T) {
	src, files := fixture(t)
	h := newHandler(t, src, Options{})
	c := "mirror/concelier/" + newID + "/mirror/"
	x := "mirror/excititor/" + newID + "/mirror/"
	for _, tc := range []struct {
		path, file, cc, ct string
	}{
		{"/concelier/exports/index.json", c + "index.json", IndexCacheControl, "application/json"},
		{"/concelier/exports/mirror/primary/manifest.json", c + "primary/manifest.json", DownloadCacheControl, "application/json"},
		{"/concelier/exports/mirror/primary/bundle.json", c + "primary/bundle.json", DownloadCacheControl, "application/json"},
		{"/concelier/exports/mirror/community/bundle.json.jws", c + "community/bundle.json.jws", DownloadCacheControl, "application/jose"},
		{"/excititor/mirror/community/index", x + "community/index.json", IndexCacheControl, "application/json"},
		{"/excititor/mirror/domains/community/index", x + "community/index.json", IndexCacheControl, "application/json"},
		{"/excititor/mirror/domains/community/exports/consensus/json", x + "community/consensus.json", DownloadCacheControl, "application/json"},
		{"/excititor/mirror/domains/community/exports/consensus/json.jws", x + "community/consensus.json.jws", DownloadCacheControl, "application/jose"},
		{"/excititor/mirror/domains/community/exports/statements/jsonl", x + "community/statements.jsonl", DownloadCacheControl, "application/x-ndjson"},
	} {
		w := get(h, tc.path)
		want := files[tc.file]
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), want) {
			t.Errorf("%s: %d %q, want the bytes of %s", tc.path, w.Code, w.Body.String(), tc.file)
			continue
		}
		for k, v := range map[string]string{
			"Cache-Control": tc.cc, "Content-Type": tc.ct, "ETag": `"sha256:` + sum(want) + `"`,
			"X-Content-Type-Options": "nosniff", "Content-Length": fmt.Sprint(len(want)),
		} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", tc.path, k, got, v)
			}
		}
	}
	// The generated Excititor documents.
	w := get(h, "/excititor/mirror/domains")
	var list struct{ Domains []DomainInfo }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 || len(list.Domains) != 1 ||
		list.Domains[0].ID != "community" || list.Domains[0].DisplayName != "Community" || list.Domains[0].ExportID != newID {
		t.Errorf("domains: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Cache-Control") != IndexCacheControl || !strings.HasPrefix(w.Header().Get("ETag"), `"sha256:`) {
		t.Errorf("domains headers: %v", w.Header())
	}
	if w := get(h, "/excititor/mirror/domains/community"); w.Code != 200 || !strings.Contains(w.Body.String(), `"id": "community"`) {
		t.Errorf("domain: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{
		"/concelier/exports/mirror/nosuch/bundle.json",       // domain not served
		"/concelier/exports/mirror/primary/other.json",       // not a mirror file
		"/excititor/mirror/domains/community/exports/x/json", // no such export key
		"/excititor/mirror/domains/community/exports/consensus/csaf",
		"/excititor/mirror/domains/primary/index", // primary is Concelier's only
		"/concelier/exports/mirror/primary",
		"/concelier/exports/",
		"/excititor/mirror/",
	} {
		if w := get(h, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
}

func TestConditionalRangeHead(t *testing.T) {
	src, files := fixture(t)
	h := newHandler(t, src, Options{})
	p := "/concelier/exports/mirror/primary/bundle.json"
	body := files["mirror/concelier/"+newID+"/mirror/primary/bundle.json"]
	etag := get(h, p).Header().Get("ETag")
	if w := do(h, req{path: p, hdr: map[string]string{"If-None-Match": etag}}); w.Code != 304 || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Errorf("If-None-Match: %d %q", w.Code, w.Body)
	}
	if w := do(h, req{path: p, hdr: map[string]string{"If-None-Match": `"sha256:` + strings.Repeat("0", 64) + `"`}}); w.Code != 200 {
		t.Errorf("other ETag: %d", w.Code)
	}
	w := do(h, req{path: p, hdr: map[string]string{"Range": "bytes=5-14"}})
	if w.Code != 206 || !bytes.Equal(w.Body.Bytes(), body[5:15]) || w.Header().Get("Content-Range") != fmt.Sprintf("bytes 5-14/%d", len(body)) {
		t.Errorf("Range: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Range"))
	}
	w = do(h, req{method: http.MethodHead, path: p})
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != fmt.Sprint(len(body)) || w.Header().Get("ETag") != etag {
		t.Errorf("HEAD: %d len %d %v", w.Code, w.Body.Len(), w.Header())
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "PATCH", "PROPFIND"} {
		if w := do(h, req{method: m, path: p}); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d", m, w.Code)
		}
	}
}

// A path with a segment that is not a plain name is refused before the
// site is opened.
func TestHostilePaths(t *testing.T) {
	src, _ := fixture(t)
	h := newHandler(t, src, Options{})
	for _, p := range []string{
		"/concelier/exports/mirror/%2e%2e/bundle.json",
		"/concelier/exports/mirror/..%2f..%2fetc/bundle.json",
		"/concelier/exports/mirror/primary%2fx/bundle.json",
		"/concelier/exports/mirror/%2fetc/bundle.json",
		"/concelier/exports/mirror/prim%00ary/bundle.json",
		"/concelier/exports/mirror/.hidden/bundle.json",
		"/concelier/exports/mirror//bundle.json",
		"/excititor/mirror/domains/%2e%2e/index",
		"/excititor/mirror/domains/community/exports/..%2f..%2fx/json",
		"/excititor/mirror/domains/community/exports/consensus/json%2f..",
		"/excititor/mirror/" + strings.Repeat("a", 200) + "/index",
	} {
		if w := get(h, p); w.Code != 400 {
			t.Errorf("%s: %d %q, want 400", p, w.Code, w.Body)
		}
	}
	for _, p := range []string{"/concelier/exports/mirror/a/b/c/d/e/f/g/h", "/excititor/mirror/a/b/c"} {
		if w := get(h, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	if n := src.opens.Load(); n != 0 {
		t.Errorf("the site was opened %d times for refused paths", n)
	}
}

func TestActiveExport(t *testing.T) {
	src, files := fixture(t)
	bundle := func(id string) []byte { return files["mirror/concelier/"+id+"/mirror/primary/bundle.json"] }
	p := "/concelier/exports/mirror/primary/bundle.json"
	if w := get(newHandler(t, src, Options{}), p); !bytes.Equal(w.Body.Bytes(), bundle(newID)) {
		t.Errorf("default: not the latest export")
	}
	h := newHandler(t, src, Options{Config: Config{Concelier: Part{ActiveExportID: oldID}}})
	if w := get(h, p); !bytes.Equal(w.Body.Bytes(), bundle(oldID)) {
		t.Errorf("activeExportId: not the named export")
	}
	h = newHandler(t, src, Options{Config: Config{Concelier: Part{ActiveExportID: "20990101T000000Z"}}})
	if w := get(h, p); w.Code != 404 || !strings.Contains(w.Body.String(), "20990101T000000Z is not installed") {
		t.Errorf("missing activeExportId: %d %q", w.Code, w.Body)
	}
	off := false
	h = newHandler(t, src, Options{Config: Config{Excititor: Part{Enabled: &off}}})
	if w := get(h, "/excititor/mirror/community/index"); w.Code != 404 {
		t.Errorf("disabled part: %d", w.Code)
	}
	if _, err := New(src, Options{Config: Config{Concelier: Part{ActiveExportID: "../x"}}}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("bad activeExportId: %v", err)
	}
}

// exports.json is read once per generation: changing it under the same
// generation id changes nothing; a new id is read anew.
func TestExportsReadOncePerGeneration(t *testing.T) {
	src, _ := fixture(t)
	h := newHandler(t, src, Options{})
	if w := get(h, "/concelier/exports/index.json"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	ej := filepath.Join(src.dir, ".offkit", "mirror", "exports.json")
	os.Chmod(ej, 0o644)
	if err := os.WriteFile(ej, []byte(`{"exports":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := get(h, "/concelier/exports/index.json"); w.Code != 200 {
		t.Errorf("same generation: %d, want the cached 200", w.Code)
	}
	src.id = "gen-2"
	if w := get(h, "/concelier/exports/index.json"); w.Code != 404 {
		t.Errorf("new generation with no exports: %d, want 404", w.Code)
	}
	// A broken exports.json is 503, not a crash or a partial listing.
	os.WriteFile(ej, []byte(`{"exports":[{"kind":"concelier","exportId":"../../x","files":[]}]}`), 0o644)
	src.id = "gen-3"
	if w := get(h, "/concelier/exports/index.json"); w.Code != 503 {
		t.Errorf("hostile exports.json: %d, want 503", w.Code)
	}
}

// A file that differs from exports.json is 503; the rest of the export is
// served. Small files are checked when the generation is first read, large
// ones by size at every open.
func TestChangedFiles(t *testing.T) {
	for _, size := range []int{0, 2 * MaxMemoryFile} {
		dir := t.TempDir()
		_, key, _ := ed25519.GenerateKey(nil)
		if _, err := kittest.MirrorGeneration(dir, key, kittest.MirrorExport{Kind: "concelier", ExportID: newID, Created: created,
			Domains: []string{"primary"}, BundleSize: size}); err != nil {
			t.Fatal(err)
		}
		bp := filepath.Join(dir, "mirror", "concelier", newID, "mirror", "primary", "bundle.json")
		os.Chmod(bp, 0o644)
		if err := os.WriteFile(bp, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHandler(t, &dirGen{dir: dir, id: "g"}, Options{})
		if w := get(h, "/concelier/exports/mirror/primary/bundle.json"); w.Code != 503 {
			t.Errorf("bundle of %d bytes changed: %d, want 503", size, w.Code)
		}
		if w := get(h, "/concelier/exports/mirror/primary/manifest.json"); w.Code != 200 {
			t.Errorf("manifest beside a changed bundle: %d", w.Code)
		}
	}
}

func TestRateLimits(t *testing.T) {
	src, _ := fixture(t)
	now := time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC)
	one := 1
	h := newHandler(t, src, Options{Now: func() time.Time { return now }, Config: Config{
		Concelier: Part{MaxIndexRequestsPerHour: 2, Domains: []Domain{{ID: "community", MaxDownloadRequestsPerHour: &one}}},
	}})
	a, b := "10.0.0.1:1000", "10.0.0.2:1000"
	idx := "/concelier/exports/index.json"
	for i := range 2 {
		if w := do(h, req{path: idx, remote: a}); w.Code != 200 {
			t.Fatalf("index %d: %d", i, w.Code)
		}
	}
	w := do(h, req{path: idx, remote: a})
	if w.Code != 429 || w.Header().Get("Retry-After") != "1800" {
		t.Errorf("third index: %d Retry-After %q, want 429 1800", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do(h, req{path: idx, remote: b}); w.Code != 200 {
		t.Errorf("another client: %d", w.Code)
	}
	// primary inherits maxIndexRequestsPerHour (2) as its download budget;
	// community has its own (1); each budget is separate from the index's.
	for i := range 2 {
		if w := do(h, req{path: "/concelier/exports/mirror/primary/bundle.json", remote: a}); w.Code != 200 {
			t.Errorf("primary %d: %d", i, w.Code)
		}
	}
	if w := do(h, req{path: "/concelier/exports/mirror/primary/manifest.json", remote: a}); w.Code != 429 {
		t.Errorf("primary 3: %d", w.Code)
	}
	do(h, req{path: "/concelier/exports/mirror/community/bundle.json", remote: a})
	w = do(h, req{path: "/concelier/exports/mirror/community/bundle.json", remote: a})
	if w.Code != 429 || w.Header().Get("Retry-After") != "3600" {
		t.Errorf("community 2: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	// The budget refills: 30 minutes later one index request more.
	now = now.Add(30 * time.Minute)
	if w := do(h, req{path: idx, remote: a}); w.Code != 200 {
		t.Errorf("after 30 min: %d", w.Code)
	}
	// An IPv6 client is its /64.
	h = newHandler(t, src, Options{Now: func() time.Time { return now }, Config: Config{Concelier: Part{MaxIndexRequestsPerHour: 1}}})
	do(h, req{path: idx, remote: "[2001:db8::1]:1"})
	if w := do(h, req{path: idx, remote: "[2001:db8::2]:1"}); w.Code != 429 {
		t.Errorf("same /64: %d", w.Code)
	}
	if w := do(h, req{path: idx, remote: "[2001:db8:0:1::1]:1"}); w.Code != 200 {
		t.Errorf("another /64: %d", w.Code)
	}
}

// A flood from many addresses keeps the budget table at its bound, and a
// client over budget is still refused while the table holds it.
func TestBudgetTableBounded(t *testing.T) {
	src, _ := fixture(t)
	h := newHandler(t, src, Options{Config: Config{MaxClients: 100, Concelier: Part{MaxIndexRequestsPerHour: 1}}})
	for i := range 5000 {
		do(h, req{path: "/concelier/exports/index.json", remote: fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)})
		if n := h.budget.len(); n > 100 {
			t.Fatalf("after %d clients the table holds %d budgets", i+1, n)
		}
	}
	if n := h.budget.len(); n != 100 {
		t.Errorf("table holds %d, want 100", n)
	}
	// The most recent client is still over its budget.
	if w := do(h, req{path: "/concelier/exports/index.json", remote: fmt.Sprintf("10.0.%d.%d:1", 4999>>8&255, 4999&255)}); w.Code != 429 {
		t.Errorf("recent client: %d", w.Code)
	}
}

func writeHtpasswd(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bcryptLine(t *testing.T, user, pass string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -B writes $2y$.
	return user + ":$2y$" + string(h[4:])
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// fakeTokens accepts the token "good" with the required scopes, refuses
// "noscope" with 403 and anything else with 401.
type fakeTokens struct{ scopes [][]string }

func (f *fakeTokens) Check(r *http.Request, scopes []string) authority.Result {
	f.scopes = append(f.scopes, scopes)
	switch r.Header.Get("Authorization") {
	case "Bearer good", "DPoP good":
		return authority.Result{Outcome: authority.OK, Status: 200, Reason: "token accepted", Subject: "ops@example.com", ClientID: "concelier-cli", Scopes: scopes}
	case "Bearer noscope":
		return authority.Result{Outcome: authority.Scope, Status: 403, Reason: "scope missing"}
	case "":
		return authority.Result{Outcome: authority.NoToken, Status: 401, Reason: "no token"}
	}
	return authority.Result{Outcome: authority.BadToken, Status: 401, Reason: "bad token"}
}

func (f *fakeTokens) Remote(r *http.Request) netip.Addr {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return ap.Addr()
}

func TestBasicAuth(t *testing.T) {
	src, _ := fixture(t)
	on := true
	var audit bytes.Buffer
	h := newHandler(t, src, Options{
		Audit: slog.New(slog.NewTextHandler(&audit, nil)),
		Config: Config{Concelier: Part{
			Htpasswd: writeHtpasswd(t, "# operators", bcryptLine(t, "ops", "s3cret")),
			Domains: []Domain{{ID: "primary", RequireAuthentication: &on,
				Htpasswd: writeHtpasswd(t, bcryptLine(t, "alice", "wonder"))}},
		}},
	})
	p := "/concelier/exports/mirror/primary/bundle.json"
	for _, tc := range []struct {
		name, auth string
		code       int
		reason     string
	}{
		{"none", "", 401, "authentication required"},
		{"wrong password", basic("alice", "nope"), 401, "wrong user or password"},
		{"unknown user", basic("bob", "wonder"), 401, "wrong user or password"},
		{"colon-less", "Basic " + base64.StdEncoding.EncodeToString([]byte("alicewonder")), 401, "malformed Basic"},
		{"not base64", "Basic !!!", 401, "malformed Basic"},
		{"huge", "Basic " + strings.Repeat("A", 1<<20), 401, "too long"},
		{"unknown scheme", "Negotiate abc", 401, "unsupported"},
		{"bearer without authority", "Bearer abc", 401, "no Authority configured"},
		{"domain user", basic("alice", "wonder"), 200, ""},
		{"part user", basic("ops", "s3cret"), 200, ""},
	} {
		w := do(h, req{path: p, remote: "192.0.2.7:5", hdr: map[string]string{"Authorization": tc.auth}})
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.reason) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, w.Code, w.Body, tc.code, tc.reason)
		}
		if tc.code == 401 {
			ch := w.Header().Values("WWW-Authenticate")
			if len(ch) != 2 || !strings.HasPrefix(ch[0], `Bearer realm="offkit"`) || ch[1] != `Basic realm="offkit mirror"` {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, ch)
			}
			// RFC 6750 §3.1: the Bearer challenge names an error only
			// when a Bearer token was sent.
			bearer := strings.HasPrefix(tc.auth, "Bearer ")
			if len(ch) > 0 && strings.Contains(ch[0], "error=") != bearer {
				t.Errorf("%s: Bearer challenge %q after %q", tc.name, ch[0], tc.auth)
			}
		}
	}
	// community is not protected: no challenge, no audit line.
	audit.Reset()
	if w := get(h, "/concelier/exports/mirror/community/bundle.json"); w.Code != 200 || audit.Len() != 0 {
		t.Errorf("open domain: %d, audit %q", w.Code, audit.String())
	}
	do(h, req{path: p, remote: "192.0.2.7:5", hdr: map[string]string{"Authorization": basic("alice", "wonder")}})
	line := audit.String()
	for _, want := range []string{"logger=offkit.authorization.audit", "route=" + p, "status=200", "subject=alice", "remote=192.0.2.7"} {
		if !strings.Contains(line, want) {
			t.Errorf("audit line %q lacks %q", line, want)
		}
	}
	if n := strings.Count(line, "\n"); n != 1 {
		t.Errorf("%d audit lines for one request", n)
	}
	// Successful checks are cached: one bcrypt for many requests.
	before := h.basic.compares.Load()
	for range 50 {
		if w := do(h, req{path: p, hdr: map[string]string{"Authorization": basic("alice", "wonder")}}); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	if n := h.basic.compares.Load() - before; n != 0 {
		t.Errorf("%d bcrypt checks for 50 requests with cached credentials", n)
	}
	// The index takes the part's rule (open here).
	if w := get(h, "/concelier/exports/index.json"); w.Code != 200 {
		t.Errorf("index: %d", w.Code)
	}
}

func TestHtpasswdRefusals(t *testing.T) {
	src, _ := fixture(t)
	for name, lines := range map[string][]string{
		"md5":       {"u:$apr1$abc$0123456789012345678901"},
		"sha1":      {"u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="},
		"crypt":     {"u:abJnggxhB/yWI"},
		"plain":     {"u:password"},
		"no colon":  {"justauser"},
		"duplicate": {bcryptLine(t, "u", "a"), bcryptLine(t, "u", "b")},
	} {
		_, err := New(src, Options{Config: Config{Excititor: Part{Htpasswd: writeHtpasswd(t, lines...)}}})
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "htpasswd") {
			t.Errorf("%s: %v", name, err)
		}
		if name == "md5" && !strings.Contains(err.Error(), "htpasswd -B") {
			t.Errorf("md5: %v does not say how to fix it", err)
		}
	}
	if _, err := New(src, Options{Config: Config{Concelier: Part{Htpasswd: "/nonexistent/htpasswd"}}}); err == nil {
		t.Error("missing htpasswd file accepted")
	}
}

func TestBearer(t *testing.T) {
	src, _ := fixture(t)
	tok := &fakeTokens{}
	var audit bytes.Buffer
	h := newHandler(t, src, Options{Tokens: tok, Audit: slog.New(slog.NewTextHandler(&audit, nil)),
		Config: Config{Concelier: Part{RequireAuthentication: true}, Excititor: Part{RequireAuthentication: true}}})
	p := "/concelier/exports/mirror/primary/manifest.json"
	for _, tc := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer bad", 401}, {"Bearer noscope", 403}, {"Bearer good", 200}, {"DPoP good", 200}} {
		w := do(h, req{path: p, remote: "192.0.2.1:1", hdr: map[string]string{"Authorization": tc.auth}})
		if w.Code != tc.code {
			t.Errorf("%q: %d, want %d", tc.auth, w.Code, tc.code)
		}
		if ch := w.Header().Values("WWW-Authenticate"); tc.code == 401 && (len(ch) != 1 || !strings.HasPrefix(ch[0], `Bearer realm="offkit"`)) {
			t.Errorf("%q: WWW-Authenticate %q", tc.auth, ch)
		}
	}
	if got := tok.scopes[len(tok.scopes)-1]; len(got) != 1 || got[0] != ConcelierScope {
		t.Errorf("scopes %v", got)
	}
	do(h, req{path: "/excititor/mirror/domains", hdr: map[string]string{"Authorization": "Bearer good"}})
	if got := tok.scopes[len(tok.scopes)-1]; got[0] != ExcititorScope {
		t.Errorf("excititor scopes %v", got)
	}
	if !strings.Contains(audit.String(), "subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read") &&
		!strings.Contains(audit.String(), `subject=ops@example.com`) {
		t.Errorf("audit %q", audit.String())
	}
	if n := strings.Count(audit.String(), "\n"); n != 6 {
		t.Errorf("%d audit lines for 6 protected requests", n)
	}
	// Basic is not enabled here: refused, and the challenge offers Bearer only.
	w := do(h, req{path: p, hdr: map[string]string{"Authorization": basic("a", "b")}})
	if w.Code != 401 || len(w.Header().Values("WWW-Authenticate")) != 1 {
		t.Errorf("basic without htpasswd: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
}

func TestMetrics(t *testing.T) {
	src, _ := fixture(t)
	now, _ := time.Parse(time.RFC3339, created)
	now = now.Add(49 * time.Hour)
	unlimited := 0
	h := newHandler(t, src, Options{Now: func() time.Time { return now }, Config: Config{Concelier: Part{MaxIndexRequestsPerHour: 1,
		Domains: []Domain{{ID: "primary", MaxDownloadRequestsPerHour: &unlimited}}}}})
	p := "/concelier/exports/mirror/primary/bundle.json"
	w := get(h, p)
	n := w.Body.Len()
	do(h, req{path: p, hdr: map[string]string{"If-None-Match": w.Header().Get("ETag")}})
	get(h, "/concelier/exports/index.json")
	get(h, "/concelier/exports/index.json")
	get(h, "/concelier/exports/mirror/..%2f/bundle.json")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	want := fmt.Sprintf(`
# HELP offkit_mirror_export_age_seconds Age of the served export of each domain (from its created or generatedAt time); alert when over 48 hours.
# TYPE offkit_mirror_export_age_seconds gauge
offkit_mirror_export_age_seconds{domain="community",kind="concelier"} 176400
offkit_mirror_export_age_seconds{domain="community",kind="excititor"} 176400
offkit_mirror_export_age_seconds{domain="primary",kind="concelier"} 176400
# HELP offkit_mirror_response_bytes_total Mirror response body bytes by part (kind) and domain.
# TYPE offkit_mirror_response_bytes_total counter
offkit_mirror_response_bytes_total{domain="",kind="concelier"} %d
offkit_mirror_response_bytes_total{domain="other",kind="concelier"} %d
offkit_mirror_response_bytes_total{domain="primary",kind="concelier"} %d
`, get(newHandler(t, src, Options{}), "/concelier/exports/index.json").Body.Len()+len("request budget spent: retry later\n"),
		len("path segment \"..%2f\" is not a valid name\n"), n)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "offkit_mirror_export_age_seconds", "offkit_mirror_response_bytes_total"); err != nil {
		t.Error(err)
	}
	for code, c := range map[string]float64{"200": 1, "304": 1} {
		if got := testutil.ToFloat64(h.requests.WithLabelValues("concelier", "primary", code)); got != c {
			t.Errorf("primary %s: %v", code, got)
		}
	}
	if got := testutil.ToFloat64(h.requests.WithLabelValues("concelier", "", "429")); got != 1 {
		t.Errorf("429s: %v", got)
	}
	if got := testutil.ToFloat64(h.requests.WithLabelValues("concelier", "other", "400")); got != 1 {
		t.Errorf("400s: %v", got)
	}
}
