package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/fifotest"
)

// An installed file swapped for a named pipe, or for a symlink to a file
// of the same size, is refused with 503 "file unavailable", as any file
// that is not what was installed: the request does not wait for a writer.
func TestTreeFileReplacedByNamedPipe(t *testing.T) {
	ts := newTestSite(t)
	ts.install(t, ts.kit(t, "a", "1.0.0", map[string]string{
		"rules/a.yaml": "groups: []\n",
		"rules/b.yaml": "groups: []\n",
		"rules/c.yaml": "groups: {}\n",
	}), 0)
	gen, err := os.Readlink(filepath.Join(ts.root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(ts.root, gen, "rules")
	if err := os.Chmod(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(rules, "a.yaml")
	fifotest.Replace(t, fifo)
	if err := os.Remove(filepath.Join(rules, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("c.yaml", filepath.Join(rules, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	s := ts.server()
	for _, method := range []string{"GET", "HEAD"} {
		done := fifotest.Guard(t, fifo)
		rec := get(t, s, method, "/rules/a.yaml")
		done()
		if rec.Code != http.StatusServiceUnavailable || (method == "GET" && rec.Body.String() != "file unavailable\n") {
			t.Errorf("%s of a named pipe: %d %q", method, rec.Code, rec.Body)
		}
	}
	if rec := get(t, s, "GET", "/rules/b.yaml"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET of a symlink to a file of the same size: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, s, "GET", "/rules/c.yaml"); rec.Code != 200 || rec.Body.String() != "groups: {}\n" {
		t.Errorf("GET of the file left in place: %d %q", rec.Code, rec.Body)
	}
}
