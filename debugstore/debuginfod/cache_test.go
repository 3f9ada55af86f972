package debuginfod_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// Small files are served from memory once read, but only while the
// generation they were read from is served: after an upgrade that drops a
// file, and after a rollback that brings it back, each answer is the
// generation's own.
func TestDebuginfodCacheFollowsGeneration(t *testing.T) {
	key := kittest.NewKey(t)
	v1, files := kittest.ManyDebugKitAt(t, key, "1.0.0", 3, func(int) int64 { return 2000 }, 1<<20)
	v2, _ := kittest.ManyDebugKitAt(t, key, "2.0.0", 1, func(int) int64 { return 2000 }, 1<<20)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}
	if _, err := s.Install(context.Background(), v1.Path, o); err != nil {
		t.Fatal(err)
	}
	srv := serve.New(serve.Config{}, nil)
	srv.Handle(debuginfod.Prefix, "buildid", debuginfod.NewHandler(site.NewView(root)))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	gone := kittest.IDOf(2)
	url := ts.URL + "/buildid/" + gone + "/debuginfo"
	for i := 0; i < 3; i++ {
		if r := do(t, "GET", url); r.code != 200 || !bytes.Equal(r.body, files[gone]) {
			t.Fatalf("generation 1, GET %d: %d", i, r.code)
		}
	}
	if _, err := s.Install(context.Background(), v2.Path, o); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", url); r.code != 404 {
		t.Errorf("after the upgrade that drops it: %d, want 404", r.code)
	}
	if r := do(t, "GET", ts.URL+"/buildid/"+kittest.IDOf(0)+"/debuginfo"); r.code != 200 {
		t.Errorf("a file of generation 2: %d", r.code)
	}
	if _, err := s.Rollback(site.RollbackOptions{Now: o.Now}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", url); r.code != 200 || !bytes.Equal(r.body, files[gone]) {
		t.Errorf("after the rollback: %d", r.code)
	}
}
