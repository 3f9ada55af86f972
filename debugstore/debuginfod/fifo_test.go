package debuginfod_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/serve"
)

// A named pipe where a .debug file or an executable would be is a 404
// that says it is not a regular file, for the file and for a section of
// it: the request does not wait for a writer.
func TestDebuginfodNamedPipe(t *testing.T) {
	id := strings.Repeat("d", 40)
	dir := t.TempDir()
	bid := filepath.Join(dir, "debug", ".build-id", id[:2])
	if err := os.MkdirAll(bid, 0o755); err != nil {
		t.Fatal(err)
	}
	debug, exe := filepath.Join(bid, id[2:]+".debug"), filepath.Join(bid, id[2:])
	fifotest.Replace(t, debug)
	fifotest.Replace(t, exe)
	srv := serve.New(serve.Config{}, nil)
	srv.Handle(debuginfod.Prefix, "buildid", debuginfod.NewHandler(dirGeneration(dir)))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, u := range []string{"/debuginfo", "/executable", "/section/.text"} {
		done, done2 := fifotest.Guard(t, debug), fifotest.Guard(t, exe)
		r := do(t, "GET", ts.URL+"/buildid/"+id+u)
		done()
		done2()
		if r.code != http.StatusNotFound || !strings.Contains(string(r.body), "named pipe, not a regular file") {
			t.Errorf("GET %s of a named pipe: %d %q", u, r.code, r.body)
		}
	}
}
