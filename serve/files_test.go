package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/site"
)

func get(t *testing.T, s *Server, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func TestTreeIndexFilesAndTraversal(t *testing.T) {
	ts := newTestSite(t)
	ts.install(t, ts.kit(t, "a", "1.0.0", map[string]string{
		"rules/a.yaml":     "groups: []\n",
		"rules/sub/b.yaml": "groups: []\n#b\n",
		"files/secret":     "outside",
	}), 0)
	// Files that no kit installed are never served, whatever put them there.
	gen, err := os.Readlink(filepath.Join(ts.root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(ts.root, gen, "rules")
	if err := os.Chmod(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "planted.yaml"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../files/secret", filepath.Join(rules, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	// The index comes from the manifests, once: an installed file changed
	// behind the site's back (same size) does not change it, and it is not
	// rebuilt per request.
	a := filepath.Join(rules, "a.yaml")
	if err := os.Chmod(a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("groups: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gens := &countingGenerations{View: site.NewView(ts.root)}
	s := New(Config{}, nil)
	s.Handle("/rules/", "rules", Tree("rules", gens))
	s.Handle("/dashboards/", "dashboards", Tree("dashboards", gens))

	var idx struct{ Files []TreeEntry }
	rec := get(t, s, "GET", "/rules/")
	json.NewDecoder(rec.Body).Decode(&idx)
	sumA := sha256.Sum256([]byte("groups: []\n"))
	if rec.Code != 200 || len(idx.Files) != 2 || idx.Files[0].Path != "a.yaml" || idx.Files[0].SHA256 != hex.EncodeToString(sumA[:]) ||
		idx.Files[1].Path != "sub/b.yaml" || idx.Files[1].Size != 14 {
		t.Fatalf("index %d %+v", rec.Code, idx)
	}
	if again := get(t, s, "GET", "/rules/index.json"); again.Header().Get("ETag") != rec.Header().Get("ETag") || again.Header().Get("ETag") == "" {
		t.Fatalf("index ETags %q %q", rec.Header().Get("ETag"), again.Header().Get("ETag"))
	}
	rec = get(t, s, "GET", "/rules/sub/b.yaml")
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != "groups: []\n#b\n" || etag != `"sha256:`+idx.Files[1].SHA256+`"` {
		t.Fatalf("file: %d %q etag %s", rec.Code, rec.Body, etag)
	}
	if rec := get(t, s, "GET", "/rules/sub/b.yaml", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Fatalf("conditional GET: %d", rec.Code)
	}
	if rec := get(t, s, "GET", "/rules/sub/b.yaml", "Range", "bytes=0-5"); rec.Code != http.StatusPartialContent || rec.Body.String() != "groups" {
		t.Fatalf("range GET: %d %q", rec.Code, rec.Body)
	}
	for _, p := range []string{"/rules/%2e%2e/files/secret", "/rules/link.yaml", "/rules/planted.yaml", "/rules/nope", "/rules/sub", "/rules/sub/", "/rules//a.yaml"} {
		rec := get(t, s, "GET", p)
		if rec.Code == 200 || strings.Contains(rec.Body.String(), "outside") {
			t.Fatalf("%s: %d %q", p, rec.Code, rec.Body)
		}
	}
	if rec := get(t, s, "PUT", "/rules/a.yaml"); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", rec.Code)
	}
	// An empty part is an empty index.
	rec = get(t, s, "GET", "/dashboards/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"files": []`) {
		t.Fatalf("empty dashboards: %d %s", rec.Code, rec.Body)
	}
	m, _ := io.ReadAll(get(t, s, "GET", "/metrics").Body)
	if !strings.Contains(string(m), `offkit_http_requests_total{code="200",method="GET",route="rules"}`) || !strings.Contains(string(m), "offkit_http_response_bytes_total") {
		t.Fatalf("metrics:\n%s", m)
	}
	if n := gens.n.Load(); n != 2 {
		t.Fatalf("the manifests were read %d times for two trees of one generation", n)
	}
}

// countingGenerations counts the reads of a generation's manifests.
type countingGenerations struct {
	*site.View
	n atomic.Int64
}

func (c *countingGenerations) KitManifests(gen *os.Root) ([]*manifest.Manifest, error) {
	c.n.Add(1)
	return c.View.KitManifests(gen)
}

// TestTreeNothingInstalled: before the first install the trees answer 503.
func TestTreeNothingInstalled(t *testing.T) {
	s := (&testSite{root: t.TempDir()}).server()
	if rec := get(t, s, "GET", "/rules/index.json"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("index with nothing installed: %d", rec.Code)
	}
}

// TestTreeContentTypes: a kit's dashboard named x.html (with HTML in it) is
// not served as text/html; every response of the trees says nosniff.
func TestTreeContentTypes(t *testing.T) {
	ts := newTestSite(t)
	ts.install(t, ts.kit(t, "hostile", "1.0.0", map[string]string{
		"dashboards/x.html":  "<html><script>alert(1)</script></html>",
		"dashboards/a.json":  `{"uid": "a"}`,
		"dashboards/d":       "<html><script>alert(1)</script></html>",
		"dashboards/e.svg":   "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
		"dashboards/f.JSON":  `{"uid": "f"}`,
		"dashboards/g.xhtml": "<html/>",
		"rules/b.yaml":       "a: 1\n",
		"rules/c.yml":        "a: 1\n",
		"rules/r.txt":        "<html><script>alert(1)</script></html>",
	}), 0)
	s := ts.server()
	want := map[string]string{
		"/dashboards/x.html":     "application/octet-stream",
		"/dashboards/a.json":     "application/json",
		"/dashboards/d":          "application/octet-stream",
		"/dashboards/e.svg":      "application/octet-stream",
		"/dashboards/f.JSON":     "application/json",
		"/dashboards/g.xhtml":    "application/octet-stream",
		"/dashboards/index.json": "application/json",
		"/dashboards/":           "application/json",
		"/rules/b.yaml":          "application/yaml",
		"/rules/c.yml":           "application/yaml",
		"/rules/r.txt":           "text/plain; charset=utf-8",
	}
	for p, ct := range want {
		for _, method := range []string{"GET", "HEAD"} {
			rec := get(t, s, method, p)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: %d, Content-Type %q, X-Content-Type-Options %q; want 200, %q, nosniff", method, p, rec.Code,
					rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"), ct)
			}
		}
	}
	for _, p := range []string{"/dashboards/nope.html", "/dashboards/%2e%2e/x"} {
		rec := get(t, s, "GET", p)
		if rec.Code == http.StatusOK || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, X-Content-Type-Options %q", p, rec.Code, rec.Header().Get("X-Content-Type-Options"))
		}
	}
}

// TestTreeGenerationSwitch: while `current` switches back and forth
// between two generations under concurrent requests, each retired
// generation removed at once, every index response lists exactly the files
// of one generation.
func TestTreeGenerationSwitch(t *testing.T) {
	ts := newTestSite(t)
	const n = 60
	v1, v2 := map[string]string{}, map[string]string{}
	for i := range n {
		v1[fmt.Sprintf("rules/v1-%02d.yaml", i)] = strings.Repeat("a", 1000)
		v2[fmt.Sprintf("rules/v2-%02d.yaml", i)] = strings.Repeat("b", 1000)
	}
	var gens []string
	for _, k := range []string{ts.kit(t, "k", "1.0.0", v1), ts.kit(t, "k", "2.0.0", v2)} {
		ts.install(t, k, 0)
		g, err := os.Readlink(filepath.Join(ts.root, "current"))
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, filepath.Join(ts.root, g))
	}
	srv := httptest.NewServer(ts.server().Handler())
	defer srv.Close()

	stop := kittest.Hammer(t, 4, func() (string, error) {
		res, err := http.Get(srv.URL + "/rules/index.json")
		if err != nil {
			return "", err
		}
		var idx struct{ Files []TreeEntry }
		err = json.NewDecoder(res.Body).Decode(&idx)
		res.Body.Close()
		if res.StatusCode == 200 && err == nil {
			return listing(idx.Files, n), nil
		}
		return fmt.Sprintf("status %d, %v", res.StatusCode, err), nil
	})
	// Each switch makes a new generation (a copy of one of the two, with
	// its own number), points `current` at it, and removes the one it
	// replaced at once.
	last := ""
	for i := range 60 {
		num := 100 + i
		dst := filepath.Join(ts.root, "generations", fmt.Sprint(num))
		copyGeneration(t, gens[i%2], dst, num)
		tmp := filepath.Join(ts.root, "current.tmp")
		if err := os.Symlink(filepath.Join("generations", fmt.Sprint(num)), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(ts.root, "current")); err != nil {
			t.Fatal(err)
		}
		if last != "" {
			if err := os.RemoveAll(last); err != nil {
				t.Fatal(err)
			}
		}
		last = dst
		time.Sleep(5 * time.Millisecond)
	}
	seen := stop()
	var bad []string
	for what := range seen {
		if what != "v1" && what != "v2" {
			bad = append(bad, what)
		}
	}
	if len(bad) > 0 || seen["v1"] == 0 || seen["v2"] == 0 {
		t.Fatalf("index responses: %v; incomplete: %q", seen, bad)
	}
	t.Logf("index responses: %v", seen)
}

// copyGeneration makes dst a copy of the generation src (files hard-linked)
// whose state names generation num.
func copyGeneration(t *testing.T, src, dst string, num int) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case rel == filepath.Join(".offkit", "state.json"):
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			var st site.State
			if err := json.Unmarshal(b, &st); err != nil {
				return err
			}
			st.Generation = num
			b, _ = json.MarshalIndent(st, "", "  ")
			return os.WriteFile(to, b, 0o644)
		}
		return os.Link(p, to)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listing says which generation's files an index lists: "v1", "v2" or what
// is wrong with it.
func listing(files []TreeEntry, n int) string {
	count := map[string]int{}
	for _, f := range files {
		count[f.Path[:2]]++
	}
	if len(files) == n && (count["v1"] == n || count["v2"] == n) {
		return files[0].Path[:2]
	}
	return fmt.Sprintf("%d files (%v)", len(files), count)
}

// TestTreeManifestTampered: a generation whose kit manifest is not the one
// its state records serves no index.
func TestTreeManifestTampered(t *testing.T) {
	ts := newTestSite(t)
	ts.install(t, ts.kit(t, "a", "1.0.0", map[string]string{"rules/a.yaml": "groups: []\n"}), 0)
	gen, err := os.Readlink(filepath.Join(ts.root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(ts.root, gen, ".offkit", "kits", "a", "manifest.json")
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(mp, 0o644)
	if err := os.WriteFile(mp, append(b, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, ts.server(), "GET", "/rules/index.json"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("index of a tampered generation: %d %s", rec.Code, rec.Body)
	}
}
