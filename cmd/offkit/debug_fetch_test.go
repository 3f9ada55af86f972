package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// offkit debug fetch writes the debug file of a build id from a kit file
// (reading a few percent of it) and from the site; OUT is replaced only by
// the whole, checked file: a failing fetch leaves OUT as it was and no
// temporary file. Each failure has its documented exit code.
func TestDebugFetch(t *testing.T) {
	r := newRunner(t)
	r.now = kittest.Created.Add(time.Hour)
	key := kittest.NewKey(t)
	_, pub := key.WriteKeys(t, t.TempDir())
	res, files := kittest.ManyDebugKit(t, key, 32, func(i int) int64 { return 80 << 10 }, 32<<10)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.debug")
	id := kittest.IDOf(17)

	got := r.ok("debug", "fetch", id, "-o", out, "--from", res.Path, "--key", pub)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, files[id]) {
		t.Fatalf("OUT is not the file (%d bytes, want %d)", len(b), len(files[id]))
	}
	if !strings.Contains(got.stdout, id+" debuginfo: "+out) || !strings.Contains(got.stdout, "frames decoded") {
		t.Errorf("output: %s", got.stdout)
	}
	j := r.jsonOK(schemas.OutputDebugFetch, "debug", "fetch", strings.ToUpper(id), "-o", out, "--from", res.Path, "--key", pub)
	if j["buildId"] != id || j["seekable"] != true || j["kitBytesRead"].(float64)*20 > j["kitSize"].(float64) {
		t.Errorf("json: %v", j)
	}

	// Failures leave OUT as it was.
	os.WriteFile(out, []byte("before"), 0o644)
	other := kittest.NewKey(t)
	_, otherPub := other.WriteKeys(t, t.TempDir())
	r.fails(errdef.ExitSignature, []string{"debug", "fetch", id, "-o", out, "--from", res.Path, "--key", otherPub})
	r.fails(errdef.ExitSignature, []string{"debug", "fetch", id, "-o", out, "--from", res.Path}, "--key")
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", strings.Repeat("ee", 20), "-o", out, "--from", res.Path, "--key", pub}, strings.Repeat("ee", 20))
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", id, "-o", out, "--from", filepath.Join(dir, "nope.kit.tar.zst"), "--key", pub})
	r.fails(errdef.ExitInvalid, []string{"debug", "fetch", "../../etc/passwd", "-o", out, "--from", res.Path, "--key", pub}, "not a build id")
	r.fails(errdef.ExitInvalid, []string{"debug", "fetch", id, "--from", res.Path, "--key", pub}, "-o")
	r.fails(errdef.ExitInvalid, []string{"debug", "fetch", id, "-o", out}, "--root")
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", id, "-o", filepath.Join(dir, "no", "such", "x"), "--from", res.Path, "--key", pub})
	kb, _ := os.ReadFile(res.Path)
	damaged := filepath.Join(dir, "damaged.kit.tar.zst")
	d := bytes.Clone(kb)
	for i := len(d) / 10; i < len(d)-2000; i += 2000 {
		d[i] ^= 0x5a
	}
	os.WriteFile(damaged, d, 0o644)
	r.fails(errdef.ExitMismatch, []string{"debug", "fetch", kittest.IDOf(16), "-o", out, "--from", damaged, "--key", pub})
	if b, _ := os.ReadFile(out); string(b) != "before" {
		t.Errorf("a failed fetch changed OUT: %d bytes", len(b))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}

	// From the site.
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: r.now}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r.ok("debug", "fetch", id, "-o", out, "--root", root)
	if f := r.jsonOK(schemas.OutputDebugFind, "debug", "find", id, "--root", root); f["buildId"] != id || !strings.HasSuffix(f["debuginfo"].(string), ".debug") || f["executable"] != nil {
		t.Errorf("debug find --json: %v", f)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, files[id]) {
		t.Errorf("from the site: not the file")
	}
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", strings.Repeat("ee", 20), "-o", out, "--root", root})
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", id, "-o", out, "--root", t.TempDir()})
	// --executable: this kit carries none.
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", id, "--executable", "-o", out, "--from", res.Path, "--key", pub}, "debug/.build-id/")
}

// push --root publishes the site's debug store beside its images; debug
// fetch --from oci:// gets a file back from it, byte for byte.
func TestDebugFetchOCI(t *testing.T) {
	r := newRunner(t)
	r.now = kittest.Created.Add(time.Hour)
	key := kittest.NewKey(t)
	res, files := kittest.ManyDebugKit(t, key, 4, func(i int) int64 { return 20 << 10 }, 1<<20)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: r.now}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	p := r.jsonOK(schemas.OutputPush, "push", "--root", root, "--to", host+"/site1", "--plain-http", "--debug-tag", "gen1")
	d, _ := p["debugStore"].(map[string]any)
	if d == nil || d["reference"] != host+"/site1/debug-store:gen1" || d["files"] != float64(4) {
		t.Fatalf("push: %v", p)
	}
	out := filepath.Join(t.TempDir(), "x.debug")
	id := kittest.IDOf(2)
	j := r.jsonOK(schemas.OutputDebugFetch, "debug", "fetch", id, "-o", out, "--from", "oci://"+host+"/site1/debug-store:gen1")
	if b, _ := os.ReadFile(out); !bytes.Equal(b, files[id]) || j["digest"] == nil {
		t.Errorf("fetched %d bytes, want %d: %v", len(b), len(files[id]), j)
	}
	r.fails(errdef.ExitNotFound, []string{"debug", "fetch", strings.Repeat("ee", 20), "-o", out, "--from", "oci://" + host + "/site1/debug-store:gen1"})
	r.fails(errdef.ExitInvalid, []string{"debug", "fetch", id, "-o", out, "--from", "oci://" + host + "/Bad Repo"})
}
