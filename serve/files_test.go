package serve

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestTreeContentTypes: a kit's dashboard named x.html (with HTML in it) is
// not served as text/html; every response of the tree says nosniff.
func TestTreeContentTypes(t *testing.T) {
	gen := t.TempDir()
	files := map[string]string{
		"dashboards/x.html":  "<html><script>alert(1)</script></html>",
		"dashboards/a.json":  `{"uid": "a"}`,
		"dashboards/b.yaml":  "a: 1\n",
		"dashboards/c.yml":   "a: 1\n",
		"dashboards/d":       "<html><script>alert(1)</script></html>",
		"dashboards/e.svg":   "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
		"dashboards/f.JSON":  `{"uid": "f"}`,
		"dashboards/g.xhtml": "<html/>",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(gen, p)), 0o755)
		os.WriteFile(filepath.Join(gen, p), []byte(c), 0o644)
	}
	s := New(Config{}, nil)
	s.Handle("/dashboards/", "dashboards", Tree("/dashboards", func() (string, error) { return filepath.Join(gen, "dashboards"), nil }))
	want := map[string]string{
		"/dashboards/x.html":     "application/octet-stream",
		"/dashboards/a.json":     "application/json",
		"/dashboards/b.yaml":     "application/yaml",
		"/dashboards/c.yml":      "application/yaml",
		"/dashboards/d":          "application/octet-stream",
		"/dashboards/e.svg":      "application/octet-stream",
		"/dashboards/f.JSON":     "application/json",
		"/dashboards/g.xhtml":    "application/octet-stream",
		"/dashboards/index.json": "application/json",
		"/dashboards/":           "application/json",
	}
	for p, ct := range want {
		for _, method := range []string{"GET", "HEAD"} {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(method, p, nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: %d, Content-Type %q, X-Content-Type-Options %q; want 200, %q, nosniff", method, p, rec.Code,
					rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"), ct)
			}
		}
	}
	for _, p := range []string{"/dashboards/nope.html", "/dashboards/%2e%2e/x"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code == http.StatusOK || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, X-Content-Type-Options %q", p, rec.Code, rec.Header().Get("X-Content-Type-Options"))
		}
	}
}
