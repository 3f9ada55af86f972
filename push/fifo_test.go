package push_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/push"
)

// A .debug file swapped for a named pipe after it was listed (here: when
// the registry is asked whether it has the blob) is refused, exit 11
// naming it; the push does not wait for a writer.
func TestDebugStorePushNamedPipe(t *testing.T) {
	dir := t.TempDir()
	name := debugstore.DebugPath(kittest.IDOf(3))
	p := filepath.Join(dir, filepath.FromSlash(name))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte("debug bytes"), 0o644))
	gen, err := os.OpenRoot(dir)
	must(t, err)
	defer gen.Close()
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return // the registry API is there
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			once.Do(func() { fifotest.Replace(t, p) })
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	done := fifotest.Guard(t, p)
	_, err = push.DebugStore(context.Background(), gen, "", push.Options{To: strings.TrimPrefix(srv.URL, "http://") + "/ns", PlainHTTP: true})
	done()
	if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), name+": a named pipe, not a regular file") {
		t.Fatalf("push of a .debug file swapped for a named pipe: %v", err)
	}
}
