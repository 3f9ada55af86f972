package push_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/debugstore/fetch"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/push"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// debugSiteRoot installs a kit of n debug files and returns the site root
// and the files by build id.
func debugSiteRoot(t *testing.T, n int) (string, map[string][]byte) {
	t.Helper()
	key := kittest.NewKey(t)
	res, files := kittest.ManyDebugKit(t, key, n, func(i int) int64 { return int64(i+1) * 3000 }, 1<<20)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	must(t, err)
	defer s.Close()
	_, err = s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)})
	must(t, err)
	return root, files
}

func openGen(t *testing.T, root string) *os.Root {
	t.Helper()
	gen, _, err := site.NewView(root).OpenGeneration()
	must(t, err)
	t.Cleanup(func() { gen.Close() })
	return gen
}

// The debug store goes to NAMESPACE/debug-store:TAG as one artifact, a
// layer per .debug file; each file comes back byte for byte by its build id
// from that layer alone; a second push uploads nothing and gives the same
// manifest; an id not in the store is exit 1.
func TestDebugStorePushAndFetch(t *testing.T) {
	var blobGets []string
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			blobGets = append(blobGets, r.URL.Path)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	root, files := debugSiteRoot(t, 6)
	gen := openGen(t, root)
	opts := push.Options{To: host + "/ops", PlainHTTP: true}
	res, err := push.DebugStore(context.Background(), gen, "", opts)
	must(t, err)
	if res.Reference != host+"/ops/debug-store:latest" || res.Files != 6 || res.Copied != 6 || res.Skipped != 0 {
		t.Fatalf("first push: %+v", res)
	}
	again, err := push.DebugStore(context.Background(), gen, "", opts)
	must(t, err)
	if again.Copied != 0 || again.Skipped != 6 || again.Bytes != 0 || again.Digest != res.Digest {
		t.Errorf("second push: %+v, first %+v", again, res)
	}
	for id, want := range files {
		blobGets = nil
		var out bytes.Buffer
		r, err := fetch.FromOCI(context.Background(), host+"/ops/debug-store:latest", id, fetch.Options{}, fetch.OCIOptions{}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) || r.Entry != debugstore.Title(id) || r.Size != int64(len(want)) {
			t.Errorf("%s: %+v, %d bytes", id, r, out.Len())
		}
		if len(blobGets) != 1 || !strings.HasSuffix(blobGets[0], r.Digest) {
			t.Errorf("%s: blobs fetched %v, want only %s", id, blobGets, r.Digest)
		}
	}
	var out bytes.Buffer
	if _, err := fetch.FromOCI(context.Background(), host+"/ops/debug-store:latest", strings.Repeat("ee", 20), fetch.Options{}, fetch.OCIOptions{}, &out); errdef.ExitCode(err) != 1 {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := fetch.FromOCI(context.Background(), host+"/ops/debug-store:nope", kittest.IDOf(1), fetch.Options{}, fetch.OCIOptions{}, &out); errdef.ExitCode(err) != 1 {
		t.Errorf("unknown tag: %v", err)
	}
	// An image that is not the debug store artifact.
	img, err := random.Image(100, 1)
	must(t, err)
	must(t, remote.Write(mustRef(t, host+"/ops/other:1"), img))
	if _, err := fetch.FromOCI(context.Background(), host+"/ops/other:1", kittest.IDOf(1), fetch.Options{}, fetch.OCIOptions{}, &out); errdef.ExitCode(err) != 11 {
		t.Errorf("not the artifact: %v", err)
	}
	// A site without debug files: nothing to push, exit 1.
	empty := t.TempDir()
	s, err := site.Open(empty, true)
	must(t, err)
	s.Close()
	k := kittest.NewKey(t)
	b := kittest.Build(t, k, "app", "1.0.0", 1000, t.TempDir())
	s, _ = site.Open(empty, true)
	_, err = s.Install(context.Background(), b.Path, site.InstallOptions{Keys: []*sign.PublicKey{k.Public}, Now: kittest.Created.Add(time.Hour)})
	s.Close()
	must(t, err)
	if _, err := push.DebugStore(context.Background(), openGen(t, empty), "", opts); errdef.ExitCode(err) != 1 {
		t.Errorf("no debug files: %v", err)
	}
}

// A registry that answers a layer's blob with other bytes: the fetch fails
// with exit 2, whatever it wrote.
func TestDebugStoreFetchTampered(t *testing.T) {
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	tamper := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tamper && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			if len(b) > 100 {
				b[100] ^= 1
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(b)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	root, _ := debugSiteRoot(t, 2)
	_, err := push.DebugStore(context.Background(), openGen(t, root), "v1", push.Options{To: host, PlainHTTP: true})
	must(t, err)
	tamper = true
	var out bytes.Buffer
	if _, err := fetch.FromOCI(context.Background(), host+"/debug-store:v1", kittest.IDOf(1), fetch.Options{}, fetch.OCIOptions{}, &out); errdef.ExitCode(err) != 2 {
		t.Errorf("tampered blob: exit %d: %v", errdef.ExitCode(err), err)
	}
}

// A .debug file larger than debug fetch reads from a registry
// (debugstore.MaxDebugFile) is refused (exit 11) before the registry is
// asked anything: push does not publish what fetch refuses.
func TestDebugStorePushRefusesOversizedFile(t *testing.T) {
	dir := t.TempDir()
	id := kittest.IDOf(3)
	p := filepath.Join(dir, filepath.FromSlash(debugstore.DebugPath(id)))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	must(t, err)
	must(t, f.Truncate(debugstore.MaxDebugFile+1)) // sparse
	f.Close()
	gen, err := os.OpenRoot(dir)
	must(t, err)
	defer gen.Close()
	var asked bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked = true }))
	defer srv.Close()
	_, err = push.DebugStore(context.Background(), gen, "", push.Options{To: strings.TrimPrefix(srv.URL, "http://") + "/ns", PlainHTTP: true})
	if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "4294967297 bytes, over the limit") || asked {
		t.Fatalf("push of a %d-byte .debug: %v (registry asked: %v)", int64(debugstore.MaxDebugFile)+1, err, asked)
	}
}
