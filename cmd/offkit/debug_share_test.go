package main

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

	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// Two kits that each carry a debug store, one build id in both: with both
// active, debug find, debug fetch --root, the debuginfod handler and the
// debug store pushed by push --root (fetched back with debug fetch --from
// oci://) have every build id; after the first kit's new version drops
// the shared id, it is still found (the second kit carries it).
func TestDebugStoresOfTwoKitsServed(t *testing.T) {
	r := newRunner(t)
	r.now = kittest.Created.Add(time.Hour)
	key := kittest.NewKey(t)
	shared, own1, own2 := kittest.IDOf(1), kittest.IDOf(2), kittest.IDOf(3)
	files := map[string][]byte{shared: kittest.DebugELF(t, shared, 5000), own1: kittest.DebugELF(t, own1, 6000), own2: kittest.DebugELF(t, own2, 7000)}
	root := filepath.Join(t.TempDir(), "site")
	install := func(k string) {
		t.Helper()
		s, err := site.Open(root, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Install(context.Background(), k, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: r.now}); err != nil {
			t.Fatal(err)
		}
	}
	install(kittest.DebugFilesKit(t, key, "alpha", "1.0.0", map[string][]byte{shared: files[shared], own1: files[own1]}).Path)
	install(kittest.DebugFilesKit(t, key, "beta", "1.0.0", map[string][]byte{shared: files[shared], own2: files[own2]}).Path)

	ts := httptest.NewServer(debuginfod.NewHandler(site.NewView(root)))
	defer ts.Close()
	out := filepath.Join(t.TempDir(), "x.debug")
	check := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if f := r.jsonOK(schemas.OutputDebugFind, "debug", "find", id, "--root", root); !strings.HasSuffix(f["debuginfo"].(string), id[2:]+".debug") {
				t.Errorf("debug find %s: %v", id, f)
			}
			r.ok("debug", "fetch", id, "-o", out, "--root", root)
			if b, _ := os.ReadFile(out); !bytes.Equal(b, files[id]) {
				t.Errorf("debug fetch --root %s: %d bytes, want %d", id, len(b), len(files[id]))
			}
			res, err := http.Get(ts.URL + "/buildid/" + id + "/debuginfo")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !bytes.Equal(b, files[id]) {
				t.Errorf("debuginfod %s: %d, %d bytes", id, res.StatusCode, len(b))
			}
		}
	}
	check(shared, own1, own2)

	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	p := r.jsonOK(schemas.OutputPush, "push", "--root", root, "--to", host+"/site1", "--plain-http")
	if d, _ := p["debugStore"].(map[string]any); d == nil || d["files"] != float64(3) {
		t.Fatalf("push of the combined debug store: %v", p)
	}
	for _, id := range []string{shared, own1, own2} {
		r.ok("debug", "fetch", id, "-o", out, "--from", "oci://"+host+"/site1/debug-store:latest")
		if b, _ := os.ReadFile(out); !bytes.Equal(b, files[id]) {
			t.Errorf("debug fetch --from oci:// %s: %d bytes, want %d", id, len(b), len(files[id]))
		}
	}

	r.now = r.now.Add(time.Minute)
	install(kittest.DebugFilesKit(t, key, "alpha", "2.0.0", map[string][]byte{own1: files[own1]}).Path)
	check(shared, own1, own2)
}
