package push_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/push"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// fixture is a kit built from a real registry and installed into a site:
// a multi-arch index team/app:1.2 with a cosign signature tag and an OCI
// referrer, and a single image stellaops/tool:3.
type fixture struct {
	root     string
	kit      string
	key      *kittest.Key
	index    v1.Hash
	children []v1.Hash
	sigTag   string
	sig      v1.Hash
	referrer v1.Hash
	tool     v1.Hash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	src := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(src.Close)
	host := strings.TrimPrefix(src.URL, "http://")
	f := &fixture{root: t.TempDir(), key: kittest.NewKey(t)}

	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		must(t, err)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		d, err := img.Digest()
		must(t, err)
		f.children = append(f.children, d)
	}
	ref := host + "/team/app:1.2"
	must(t, remote.WriteIndex(mustRef(t, ref), idx))
	f.index = digest(t, idx)

	sig, err := random.Image(256, 1)
	must(t, err)
	f.sigTag = "sha256-" + f.index.Hex + ".sig"
	must(t, remote.Write(mustRef(t, host+"/team/app:"+f.sigTag), sig))
	f.sig = digest(t, sig)

	sbom, err := random.Image(128, 1)
	must(t, err)
	sbom = mutate.ConfigMediaType(sbom, "application/vnd.example.sbom.v1+json")
	im, err := idx.IndexManifest()
	must(t, err)
	size, err := idx.Size()
	must(t, err)
	sbom = mutate.Subject(sbom, v1.Descriptor{MediaType: im.MediaType, Digest: f.index, Size: size}).(v1.Image)
	f.referrer = digest(t, sbom)
	must(t, remote.Write(mustRef(t, host+"/team/app@"+f.referrer.String()), sbom))

	tool, err := random.Image(4096, 3)
	must(t, err)
	must(t, remote.Write(mustRef(t, host+"/stellaops/tool:3"), tool))
	f.tool = digest(t, tool)

	created := kittest.Created
	spec := &manifest.Spec{Name: "app", Version: "1.0.0", CreatedAt: &created, Images: []manifest.ImageSource{{Ref: ref}, {Ref: host + "/stellaops/tool:3"}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{OutDir: t.TempDir(), Key: f.key.Private, PlainHTTP: true})
	must(t, err)
	f.kit = res.Path
	s, err := site.Open(f.root, true)
	must(t, err)
	defer s.Close()
	_, err = s.Install(context.Background(), res.Path, site.InstallOptions{Keys: f.keys(), Now: kittest.Created.Add(time.Hour)})
	must(t, err)
	return f
}

func (f *fixture) keys() []*sign.PublicKey { return []*sign.PublicKey{f.key.Public} }

func (f *fixture) verifyOptions() verify.Options {
	return verify.Options{Keys: f.keys(), Now: kittest.Created.Add(time.Hour)}
}

// target is a registry on loopback that counts what is written to it.
type target struct {
	host      string
	uploads   atomic.Int64 // requests to /v2/*/blobs/uploads
	manifests atomic.Int64 // PUTs of manifests
	inFlight  atomic.Int64
	maxFlight atomic.Int64
	// wrap, when set, sees every request first; it returns true when it
	// answered.
	wrap func(w http.ResponseWriter, r *http.Request) bool
}

func newTarget(t *testing.T, opts ...ggcr.Option) *target {
	t.Helper()
	tg := &target{}
	reg := ggcr.New(append(opts, ggcr.Logger(log.New(io.Discard, "", 0)))...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tg.wrap != nil && tg.wrap(w, r) {
			return
		}
		switch {
		case strings.Contains(r.URL.Path, "/blobs/uploads") && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch):
			tg.uploads.Add(1)
			if r.Method == http.MethodPut {
				n := tg.inFlight.Add(1)
				defer tg.inFlight.Add(-1)
				for m := tg.maxFlight.Load(); n > m && !tg.maxFlight.CompareAndSwap(m, n); m = tg.maxFlight.Load() {
				}
				time.Sleep(5 * time.Millisecond) // let concurrent uploads overlap
			}
		case strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodPut:
			tg.manifests.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tg.host = strings.TrimPrefix(srv.URL, "http://")
	return tg
}

func (tg *target) reset() { tg.uploads.Store(0); tg.manifests.Store(0) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	must(t, err)
	return r
}

func digest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	must(t, err)
	return d
}

// checkPulled checks that every image of the fixture can be pulled from the
// target under prefix (HOST/NAMESPACE) with its digest, layers included.
func (f *fixture) checkPulled(t *testing.T, prefix string) {
	t.Helper()
	head := func(ref string, want v1.Hash) {
		t.Helper()
		d, err := remote.Head(mustRef(t, ref))
		if err != nil {
			t.Errorf("HEAD %s: %v", ref, err)
			return
		}
		if d.Digest != want {
			t.Errorf("%s has digest %s, want %s", ref, d.Digest, want)
		}
	}
	head(prefix+"/team/app:1.2", f.index)
	head(prefix+"/team/app:"+f.sigTag, f.sig)
	head(prefix+"/team/app@"+f.referrer.String(), f.referrer)
	head(prefix+"/stellaops/tool:3", f.tool)

	idx, err := remote.Index(mustRef(t, prefix+"/team/app:1.2"))
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != len(f.children) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(f.children))
	}
	for i, c := range f.children {
		if im.Manifests[i].Digest != c {
			t.Errorf("index child %d is %s, want %s", i, im.Manifests[i].Digest, c)
		}
		pullLayers(t, prefix+"/team/app@"+c.String())
	}
	pullLayers(t, prefix+"/stellaops/tool:3")
}

func pullLayers(t *testing.T, ref string) {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref))
	must(t, err)
	ls, err := img.Layers()
	must(t, err)
	for _, l := range ls {
		rc, err := l.Compressed()
		must(t, err)
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Errorf("%s: layer: %v", ref, err)
		}
	}
}

func TestPushSiteTwice(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	ctx := context.Background()
	var progressed int
	opts := push.Options{To: tg.host + "/mirror", PlainHTTP: true, Progress: func(push.Image) { progressed++ }}

	res, err := push.Site(ctx, site.NewView(f.root), opts)
	must(t, err)
	f.checkPulled(t, tg.host+"/mirror")
	if len(res.Images) != 4 || progressed != 4 {
		t.Fatalf("%d images, %d progress calls; want 4: %+v", len(res.Images), progressed, res.Images)
	}
	// Tagged images first (in index order), then referrers, then cosign tags.
	order := []struct{ ref, kind string }{
		{tg.host + "/mirror/stellaops/tool:3", "image"},
		{tg.host + "/mirror/team/app:1.2", "image"},
		{tg.host + "/mirror/team/app@" + f.referrer.String(), "digest"},
		{tg.host + "/mirror/team/app:" + f.sigTag, "cosign"},
	}
	for i, im := range res.Images {
		if im.Reference != order[i].ref || im.Kind != order[i].kind {
			t.Errorf("image %d: %s (%s), want %s (%s)", i, im.Reference, im.Kind, order[i].ref, order[i].kind)
		}
	}
	// index + 2 × (manifest, config, 2 layers) = 9 nodes, all new.
	if app := res.Images[1]; app.Nodes != 9 || app.Copied != 9 || app.Skipped != 0 || !app.Tagged {
		t.Errorf("app: %+v", app)
	}
	if res.Copied == 0 || res.Bytes == 0 || tg.uploads.Load() == 0 {
		t.Errorf("first push copied %d nodes, %d bytes, %d upload requests", res.Copied, res.Bytes, tg.uploads.Load())
	}

	tg.reset()
	again, err := push.Site(ctx, site.NewView(f.root), opts)
	must(t, err)
	if n := tg.uploads.Load(); n != 0 {
		t.Errorf("second push: %d blob upload requests, want 0", n)
	}
	if n := tg.manifests.Load(); n != 0 {
		t.Errorf("second push: %d manifest PUTs, want 0", n)
	}
	if again.Copied != 0 || again.Bytes != 0 {
		t.Errorf("second push copied %d nodes, %d bytes", again.Copied, again.Bytes)
	}
	for _, im := range again.Images {
		if im.Copied != 0 || im.Skipped != im.Nodes || im.Tagged {
			t.Errorf("second push: %+v", im)
		}
	}
}

func TestPushKit(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t, ggcr.WithReferrersSupport(true))
	tmp := t.TempDir()
	opts := push.Options{To: tg.host, PlainHTTP: true, TempDir: tmp, Jobs: 2}
	res, err := push.Kit(context.Background(), f.kit, f.verifyOptions(), opts)
	must(t, err)
	f.checkPulled(t, tg.host)
	if len(res.Images) != 4 {
		t.Errorf("%d images, want 4", len(res.Images))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp folder not removed: %v", left)
	}
	if n := tg.maxFlight.Load(); n > 2 {
		t.Errorf("%d concurrent blob uploads with Jobs 2", n)
	}

	// The site holds the same images: pushing it uploads nothing.
	tg.reset()
	_, err = push.Site(context.Background(), site.NewView(f.root), opts)
	must(t, err)
	if n := tg.uploads.Load() + tg.manifests.Load(); n != 0 {
		t.Errorf("site push after kit push: %d writes, want 0", n)
	}
}

func TestPushKitRefused(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	var requests atomic.Int64
	tg.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/" {
			requests.Add(1)
		}
		return false
	}
	opts := push.Options{To: tg.host, PlainHTTP: true, TempDir: t.TempDir()}

	other := kittest.NewKey(t)
	_, err := push.Kit(context.Background(), f.kit, verify.Options{Keys: []*sign.PublicKey{other.Public}, Now: kittest.Created}, opts)
	if !errors.Is(err, errdef.ErrSignature) {
		t.Errorf("wrong key: %v, want ErrSignature", err)
	}

	// A kit whose image blob does not match its manifest.
	good := kittest.File("images/blobs/sha256/"+strings.Repeat("ab", 32), []byte("layer"))
	bad := kittest.File(good.Header.Name, []byte("LAYER"))
	path := (&kittest.Craft{Content: []kittest.Entry{bad}, Manifest: kittest.ManifestFor([]kittest.Entry{good}), Key: f.key}).
		Write(t, filepath.Join(t.TempDir(), "bad.kit.tar.zst"))
	_, err = push.Kit(context.Background(), path, f.verifyOptions(), opts)
	if !errors.Is(err, errdef.ErrDigestMismatch) && !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("tampered kit: %v, want a verification error", err)
	}

	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests beyond the ping for kits that failed verification", n)
	}
	if left, _ := os.ReadDir(opts.TempDir); len(left) != 0 {
		t.Errorf("temp folder not removed: %v", left)
	}
}

func TestMapping(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	res, err := push.Site(context.Background(), site.NewView(f.root), push.Options{To: tg.host + "/site/ns", PlainHTTP: true, Mapping: reponame.Mapping{StripPrefix: "stellaops/"}})
	must(t, err)
	want := map[string]bool{
		tg.host + "/site/ns/team/app:1.2":                    true,
		tg.host + "/site/ns/tool:3":                          true,
		tg.host + "/site/ns/team/app:" + f.sigTag:            true,
		tg.host + "/site/ns/team/app@" + f.referrer.String(): true,
	}
	for _, im := range res.Images {
		if !want[im.Reference] {
			t.Errorf("unexpected reference %s", im.Reference)
		}
		delete(want, im.Reference)
	}
	for ref := range want {
		t.Errorf("missing reference %s", ref)
	}
	if _, err := remote.Head(mustRef(t, tg.host+"/site/ns/tool:3")); err != nil {
		t.Error(err)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	ctx := context.Background()
	for _, to := range []string{"", "http://" + tg.host, tg.host + "/Upper", tg.host + "/ns:tag", "bad host/ns", tg.host + "//x", tg.host + "/ns@sha256:00"} {
		if _, err := push.Site(ctx, site.NewView(f.root), push.Options{To: to, PlainHTTP: true}); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("--to %q: %v, want ErrInvalid", to, err)
		} else if to != "" && !strings.Contains(err.Error(), to) {
			t.Errorf("--to %q: error %q does not name it", to, err)
		}
	}
	if _, err := push.Site(ctx, site.NewView(f.root), push.Options{To: tg.host, PlainHTTP: true, Jobs: -1}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("jobs -1: %v, want ErrInvalid", err)
	}
	if _, err := push.Site(ctx, site.NewView(t.TempDir()), push.Options{To: tg.host, PlainHTTP: true}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("empty site: %v, want ErrNotFound", err)
	}
	if _, err := push.Kit(ctx, filepath.Join(t.TempDir(), "none.kit.tar.zst"), f.verifyOptions(), push.Options{To: tg.host, PlainHTTP: true}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing kit: %v, want ErrNotFound", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().String()
	l.Close()
	_, err = push.Site(ctx, site.NewView(f.root), push.Options{To: closed, PlainHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "registry "+closed+": unreachable") {
		t.Errorf("closed port: %v", err)
	}
}

func TestCredentials(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	tg.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "site" && p == "secret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	ctx := context.Background()
	_, err := push.Site(ctx, site.NewView(f.root), push.Options{To: tg.host, PlainHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "registry "+tg.host+": access refused") {
		t.Errorf("no credentials: %v", err)
	}
	if tg.uploads.Load() != 0 {
		t.Errorf("%d uploads without credentials", tg.uploads.Load())
	}
	cred := func(ctx context.Context, host string) (auth.Credential, error) {
		if host != tg.host {
			t.Errorf("credential asked for %q", host)
		}
		return auth.Credential{Username: "site", Password: "secret"}, nil
	}
	if _, err := push.Site(ctx, site.NewView(f.root), push.Options{To: tg.host, PlainHTTP: true, Credential: cred}); err != nil {
		t.Errorf("with credentials: %v", err)
	}
}

func TestRetriesFailedUpload(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	var mu sync.Mutex
	failed := map[string]bool{}
	tg.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		// The first upload of every blob fails once, after its body was read.
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads") {
			return false
		}
		d := r.URL.Query().Get("digest")
		mu.Lock()
		defer mu.Unlock()
		if failed[d] {
			return false
		}
		failed[d] = true
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	_, err := push.Site(context.Background(), site.NewView(f.root), push.Options{To: tg.host, PlainHTTP: true, Jobs: 8})
	must(t, err)
	f.checkPulled(t, tg.host)
	if len(failed) == 0 {
		t.Error("no upload was failed")
	}
}

func TestJobsBound(t *testing.T) {
	f := newFixture(t)
	tg := newTarget(t)
	_, err := push.Site(context.Background(), site.NewView(f.root), push.Options{To: tg.host, PlainHTTP: true, Jobs: 1})
	must(t, err)
	if n := tg.maxFlight.Load(); n != 1 {
		t.Errorf("%d concurrent blob uploads with Jobs 1", n)
	}
}
