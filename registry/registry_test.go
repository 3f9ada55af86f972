package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/registry"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

const sbomType = "application/vnd.example.sbom.v1+json"

// fixture is a site with one kit installed from a real registry: a
// multi-arch index team/app:1.2 with a cosign signature tag and an OCI
// referrer, served by the registry under test.
type fixture struct {
	url      string
	root     string
	srcHost  string
	key      *kittest.Key
	index    v1.Hash
	children map[string]v1.Hash // "linux/amd64" → digest
	layer    v1.Hash
	layerLen int64
	sigTag   string
	referrer v1.Hash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	src := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(src.Close)
	f := &fixture{srcHost: strings.TrimPrefix(src.URL, "http://"), root: t.TempDir(), key: kittest.NewKey(t), children: map[string]v1.Hash{}}

	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		d, _ := img.Digest()
		f.children["linux/"+arch] = d
		if arch == "amd64" {
			ls, _ := img.Layers()
			f.layer, _ = ls[0].Digest()
			f.layerLen, _ = ls[0].Size()
		}
	}
	ref := f.srcHost + "/team/app:1.2"
	must(t, remote.WriteIndex(mustRef(t, ref), idx))
	f.index, _ = idx.Digest()

	sig, _ := random.Image(256, 1)
	f.sigTag = "sha256-" + f.index.Hex + ".sig"
	must(t, remote.Write(mustRef(t, f.srcHost+"/team/app:"+f.sigTag), sig))

	sbom, _ := random.Image(128, 1)
	sbom = mutate.ConfigMediaType(sbom, sbomType)
	im, _ := idx.IndexManifest()
	sbom = mutate.Subject(sbom, v1.Descriptor{MediaType: im.MediaType, Digest: f.index, Size: mustSize(t, idx)}).(v1.Image)
	f.referrer, _ = sbom.Digest()
	must(t, remote.Write(mustRef(t, f.srcHost+"/team/app@"+f.referrer.String()), sbom))

	f.install(t, "1.0.0", []manifest.ImageSource{{Ref: ref, PlainHTTP: true}})
	srv := httptest.NewServer(registry.New(site.NewView(f.root), registry.Options{}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fixture) install(t *testing.T, version string, imgs []manifest.ImageSource) {
	t.Helper()
	created := kittest.Created
	spec := &manifest.Spec{Name: "app", Version: version, CreatedAt: &created, Images: imgs}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{OutDir: t.TempDir(), Key: f.key.Private, PlainHTTP: true})
	must(t, err)
	s, err := site.Open(f.root, true)
	must(t, err)
	defer s.Close()
	_, err = s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{f.key.Public}, Now: kittest.Created.Add(time.Hour)})
	must(t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	must(t, err)
	return r
}

func mustSize(t *testing.T, idx v1.ImageIndex) int64 {
	n, err := idx.Size()
	must(t, err)
	return n
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (f *fixture) do(t *testing.T, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, nil)
	must(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err)
	return response{res.StatusCode, res.Header, b}
}

// errorCode returns the first code of a distribution-spec error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("status %d: body %q is not a distribution-spec error", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error body Content-Type %q", ct)
	}
	return body.Errors[0].Code
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestPullEndpoints(t *testing.T) {
	f := newFixture(t)
	repo := "/v2/team/app"

	r := f.do(t, "GET", "/v2/")
	if r.code != 200 || r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("GET /v2/: %d %v", r.code, r.header)
	}

	// Manifests by tag and by digest, GET and HEAD.
	r = f.do(t, "GET", repo+"/manifests/1.2")
	if r.code != 200 || r.header.Get("Content-Type") != string(types.OCIImageIndex) ||
		r.header.Get("Docker-Content-Digest") != f.index.String() || sha(r.body) != f.index.String() ||
		r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Fatalf("GET manifest by tag: %d %v digest of body %s", r.code, r.header, sha(r.body))
	}
	indexLen := len(r.body)
	h := f.do(t, "HEAD", repo+"/manifests/"+f.index.String())
	if h.code != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != fmt.Sprint(indexLen) || h.header.Get("Docker-Content-Digest") != f.index.String() {
		t.Fatalf("HEAD manifest by digest: %d %v", h.code, h.header)
	}
	amd := f.children["linux/amd64"]
	r = f.do(t, "GET", repo+"/manifests/"+amd.String())
	if r.code != 200 || r.header.Get("Content-Type") != string(types.DockerManifestSchema2) || sha(r.body) != amd.String() {
		t.Fatalf("GET child manifest: %d %v", r.code, r.header)
	}

	// Blobs: whole, HEAD, ranges.
	r = f.do(t, "GET", repo+"/blobs/"+f.layer.String())
	if r.code != 200 || sha(r.body) != f.layer.String() || int64(len(r.body)) != f.layerLen || r.header.Get("Docker-Content-Digest") != f.layer.String() {
		t.Fatalf("GET blob: %d, %d bytes, %v", r.code, len(r.body), r.header)
	}
	whole := r.body
	h = f.do(t, "HEAD", repo+"/blobs/"+f.layer.String())
	if h.code != 200 || h.header.Get("Content-Length") != fmt.Sprint(f.layerLen) || len(h.body) != 0 {
		t.Fatalf("HEAD blob: %d %v", h.code, h.header)
	}
	r = f.do(t, "GET", repo+"/blobs/"+f.layer.String(), "Range", "bytes=10-19")
	if r.code != 206 || string(r.body) != string(whole[10:20]) || r.header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", f.layerLen) {
		t.Fatalf("ranged GET: %d %q %v", r.code, r.body, r.header)
	}
	r = f.do(t, "GET", repo+"/blobs/"+f.layer.String(), "Range", fmt.Sprintf("bytes=%d-", f.layerLen+10))
	if r.code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", r.code)
	}
	r = f.do(t, "GET", repo+"/blobs/"+f.layer.String(), "Range", "bytes=zz")
	if r.code == 500 || (r.code == 206) {
		t.Fatalf("malformed range: %d", r.code)
	}

	// Signature tag and referrers.
	if r = f.do(t, "GET", repo+"/manifests/"+f.sigTag); r.code != 200 {
		t.Fatalf("cosign signature tag: %d", r.code)
	}
	r = f.do(t, "GET", repo+"/referrers/"+f.index.String())
	var refs v1.IndexManifest
	must(t, json.Unmarshal(r.body, &refs))
	if r.code != 200 || r.header.Get("Content-Type") != string(types.OCIImageIndex) || len(refs.Manifests) != 1 ||
		refs.Manifests[0].Digest != f.referrer || refs.Manifests[0].ArtifactType != sbomType {
		t.Fatalf("referrers: %d %s", r.code, r.body)
	}
	r = f.do(t, "GET", repo+"/referrers/"+f.index.String()+"?artifactType="+url.QueryEscape("application/other"))
	must(t, json.Unmarshal(r.body, &refs))
	if r.code != 200 || len(refs.Manifests) != 0 || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %d %s %v", r.code, r.body, r.header)
	}
	r = f.do(t, "GET", repo+"/referrers/"+amd.String())
	must(t, json.Unmarshal(r.body, &refs))
	if r.code != 200 || len(refs.Manifests) != 0 {
		t.Fatalf("referrers of an image with none: %d %s", r.code, r.body)
	}

	// Tags and catalog, paginated.
	var tl struct {
		Name string
		Tags []string
	}
	r = f.do(t, "GET", repo+"/tags/list")
	must(t, json.Unmarshal(r.body, &tl))
	if tl.Name != "team/app" || strings.Join(tl.Tags, ",") != "1.2,"+f.sigTag {
		t.Fatalf("tags: %s", r.body)
	}
	r = f.do(t, "GET", repo+"/tags/list?n=1")
	must(t, json.Unmarshal(r.body, &tl))
	if len(tl.Tags) != 1 || tl.Tags[0] != "1.2" || !strings.Contains(r.header.Get("Link"), `last=1.2`) || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("tags page 1: %s Link %q", r.body, r.header.Get("Link"))
	}
	r = f.do(t, "GET", repo+"/tags/list?n=1&last=1.2")
	must(t, json.Unmarshal(r.body, &tl))
	if len(tl.Tags) != 1 || tl.Tags[0] != f.sigTag || r.header.Get("Link") != "" {
		t.Fatalf("tags page 2: %s Link %q", r.body, r.header.Get("Link"))
	}
	r = f.do(t, "GET", repo+"/tags/list?n=99999999999")
	must(t, json.Unmarshal(r.body, &tl))
	if r.code != 200 || len(tl.Tags) != 2 {
		t.Fatalf("huge n: %d %s", r.code, r.body)
	}
	r = f.do(t, "GET", repo+"/tags/list?n=0")
	must(t, json.Unmarshal(r.body, &tl))
	if r.code != 200 || len(tl.Tags) != 0 {
		t.Fatalf("n=0: %d %s", r.code, r.body)
	}
	var cat struct{ Repositories []string }
	r = f.do(t, "GET", "/v2/_catalog")
	must(t, json.Unmarshal(r.body, &cat))
	if strings.Join(cat.Repositories, ",") != "team/app" {
		t.Fatalf("catalog: %s", r.body)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	unknown := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		method, path string
		code         int
		errCode      string
	}{
		{"GET", "/v2/team/app/manifests/9.9", 404, "MANIFEST_UNKNOWN"},
		{"HEAD", "/v2/team/app/manifests/9.9", 404, ""},
		{"GET", "/v2/team/app/manifests/" + unknown, 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/team/app/manifests/sha256:short", 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/app/blobs/" + unknown, 404, "BLOB_UNKNOWN"},
		{"HEAD", "/v2/team/app/blobs/" + unknown, 404, ""},
		{"GET", "/v2/team/app/blobs/md5:abc", 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/app/blobs/sha256:" + strings.Repeat("AB", 32), 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/nope/tags/list", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/team/nope/manifests/1.2", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/Team/App/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/team/app/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"},
		{"GET", "/v2/team/app/tags/list?n=abc", 400, "PAGINATION_NUMBER_INVALID"},
		{"GET", "/v2/team/app/referrers/sha256:nothex", 400, "DIGEST_INVALID"},
		{"GET", "/v2/team/app/unknown/x", 404, "NAME_UNKNOWN"},
		{"PUT", "/v2/team/app/manifests/1.2", 405, "UNSUPPORTED"},
		{"DELETE", "/v2/team/app/manifests/1.2", 405, "UNSUPPORTED"},
		{"POST", "/v2/team/app/blobs/uploads/", 405, "UNSUPPORTED"},
		{"PATCH", "/v2/team/app/blobs/uploads/x", 405, "UNSUPPORTED"},
		{"DELETE", "/v2/team/app/blobs/" + unknown, 405, "UNSUPPORTED"},
	} {
		r := f.do(t, c.method, c.path)
		if r.code != c.code {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.path, r.code, c.code, r.body)
			continue
		}
		if c.errCode != "" {
			if got := errorCode(t, r); got != c.errCode {
				t.Errorf("%s %s: code %s, want %s", c.method, c.path, got, c.errCode)
			}
		}
	}
	// Traversal in the repository name, sent as raw bytes.
	for _, p := range []string{"/v2/../../etc/passwd/blobs/" + unknown, "/v2/team/../../app/manifests/1.2", "/v2/team/app%2F..%2F..%2Fx/tags/list"} {
		req, _ := http.NewRequest("GET", f.url, nil)
		req.URL.Opaque = p
		res, err := http.DefaultClient.Do(req)
		must(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 || res.StatusCode >= 500 || strings.Contains(string(b), "root:") {
			t.Errorf("GET %s: %d %q", p, res.StatusCode, b)
		}
	}
}

// TestManifestServedAsStored: a tag that names an index answers with that
// index, with its own media type and the digest the tag names, whatever
// Accept lists (as distribution does); HEAD and GET agree.
func TestManifestServedAsStored(t *testing.T) {
	f := newFixture(t)
	schema2, ociManifest, ociIndex := string(types.DockerManifestSchema2), string(types.OCIManifestSchema1), string(types.OCIImageIndex)
	for _, c := range []struct {
		name   string
		accept []string
	}{
		{"no Accept", nil},
		{"wildcard", []string{"*/*"}},
		{"crane-style comma list", []string{schema2 + ", " + ociIndex + ";q=0.9"}},
		{"skopeo-style lines", []string{schema2, ociManifest, ociIndex}},
		{"schema2 only", []string{schema2}},
		{"schema2 only over two lines", []string{"text/plain", schema2}},
		{"image manifest types only", []string{ociManifest + ", " + schema2}},
		{"an unrelated type only", []string{"text/plain"}},
	} {
		var hdr []string
		for _, a := range c.accept {
			hdr = append(hdr, "Accept", a)
		}
		for _, ref := range []string{"1.2", f.index.String()} {
			g := f.do(t, "GET", "/v2/team/app/manifests/"+ref, hdr...)
			if g.code != 200 || g.header.Get("Content-Type") != ociIndex ||
				g.header.Get("Docker-Content-Digest") != f.index.String() || sha(g.body) != f.index.String() {
				t.Errorf("%s: GET %s: %d %s %s, body %s; want the stored index %s (%s)", c.name, ref, g.code,
					g.header.Get("Content-Type"), g.header.Get("Docker-Content-Digest"), sha(g.body), f.index, ociIndex)
			}
			h := f.do(t, "HEAD", "/v2/team/app/manifests/"+ref, hdr...)
			for _, k := range []string{"Content-Type", "Docker-Content-Digest", "Content-Length", "ETag"} {
				if h.code != g.code || h.header.Get(k) != g.header.Get(k) {
					t.Errorf("%s: HEAD %s: %d %s %q, GET says %d %q", c.name, ref, h.code, k, h.header.Get(k), g.code, g.header.Get(k))
				}
			}
		}
	}
	// A child is served as stored too, by its digest, with its own type.
	amd := f.children["linux/amd64"]
	r := f.do(t, "GET", "/v2/team/app/manifests/"+amd.String(), "Accept", ociIndex)
	if r.code != 200 || r.header.Get("Content-Type") != schema2 || r.header.Get("Docker-Content-Digest") != amd.String() || sha(r.body) != amd.String() {
		t.Errorf("child by digest with an index-only Accept: %d %s %s", r.code, r.header.Get("Content-Type"), r.header.Get("Docker-Content-Digest"))
	}
}

// TestGenerationSwitch: a new generation is served without restart, every
// response during the switch is from the old or the new generation, and a
// download in flight finishes.
func TestGenerationSwitch(t *testing.T) {
	f := newFixture(t)
	img, _ := random.Image(1024, 1)
	newRef := f.srcHost + "/team/app:2.0"
	must(t, remote.Write(mustRef(t, newRef), img))
	newDigest, _ := img.Digest()

	// A download in flight: read half of a blob before the switch.
	res, err := http.Get(f.url + "/v2/team/app/blobs/" + f.layer.String())
	must(t, err)
	defer res.Body.Close()
	half := make([]byte, f.layerLen/2)
	_, err = io.ReadFull(res.Body, half)
	must(t, err)

	stop := kittest.Hammer(t, 4, func() (string, error) {
		r, err := http.Get(f.url + "/v2/team/app/tags/list")
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		var tl struct{ Tags []string }
		json.Unmarshal(b, &tl)
		return fmt.Sprintf("%d %s", r.StatusCode, strings.Join(tl.Tags, ",")), nil
	})
	f.install(t, "2.0.0", []manifest.ImageSource{{Ref: newRef, PlainHTTP: true}})
	time.Sleep(50 * time.Millisecond)
	seen := stop()
	old, next := "200 1.2,"+f.sigTag, "200 2.0"
	for k := range seen {
		if k != old && k != next {
			t.Errorf("a response from neither generation: %q (seen %v)", k, seen)
		}
	}
	if seen[next] == 0 {
		t.Errorf("new generation never served: %v", seen)
	}
	rest, err := io.ReadAll(res.Body)
	must(t, err)
	if sha(append(half, rest...)) != f.layer.String() {
		t.Fatal("the download in flight did not finish intact")
	}
	r := f.do(t, "GET", "/v2/team/app/manifests/2.0")
	if r.code != 200 || r.header.Get("Docker-Content-Digest") != newDigest.String() {
		t.Fatalf("new tag: %d %v", r.code, r.header)
	}
	if r = f.do(t, "GET", "/v2/team/app/manifests/1.2"); r.code != 404 {
		t.Fatalf("old tag after the switch: %d", r.code)
	}
}
