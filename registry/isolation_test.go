package registry_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/registry"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/site"
)

// diskSite is a site written straight to disk: a store of blobs and
// generations whose merged image index and state are written as install
// writes them. It makes generations that install refuses, to test what the
// registry does if it meets one anyway.
type diskSite struct {
	root string
	gen  int
}

func newDiskSite(t *testing.T) *diskSite {
	t.Helper()
	s := &diskSite{root: t.TempDir()}
	must(t, os.MkdirAll(s.blobPath(""), 0o755))
	return s
}

func (s *diskSite) blobPath(hex string) string {
	return filepath.Join(s.root, "store", "oci", "blobs", "sha256", hex)
}

// put stores b as a blob and returns its descriptor.
func (s *diskSite) put(t *testing.T, b []byte, mediaType string) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(b)
	must(t, os.WriteFile(s.blobPath(d.Encoded()), b, 0o444))
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// image stores an image manifest with a config and one layer.
func (s *diskSite) image(t *testing.T, seed string) ocispec.Descriptor {
	t.Helper()
	cfg := s.put(t, []byte(`{"architecture":"amd64","os":"linux","seed":`+strconv.Quote(seed)+`}`), ocispec.MediaTypeImageConfig)
	layer := s.put(t, []byte("layer of "+seed), ocispec.MediaTypeImageLayerGzip)
	return s.manifest(t, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
}

func (s *diskSite) manifest(t *testing.T, m ocispec.Manifest) ocispec.Descriptor {
	t.Helper()
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	must(t, err)
	return s.put(t, b, ocispec.MediaTypeImageManifest)
}

func (s *diskSite) index(t *testing.T, children ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	must(t, err)
	return s.put(t, b, ocispec.MediaTypeImageIndex)
}

// diskKit is one kit of a generation: its images by reference.
type diskKit struct {
	name      string
	installed time.Time
	images    []ocispec.Descriptor // annotated with the reference
}

func tagged(d ocispec.Descriptor, ref string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	return d
}

// activate writes the next generation with kits and points current at it:
// the merged index as install writes it (every descriptor annotated with
// its kit, sorted by reference then digest) and state.json.
func (s *diskSite) activate(t *testing.T, kits ...diskKit) {
	t.Helper()
	s.gen++
	meta := filepath.Join(s.root, "generations", strconv.Itoa(s.gen), ".offkit")
	must(t, os.MkdirAll(filepath.Join(meta, "images"), 0o755))
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	st := site.State{Generation: s.gen, HighWater: map[string]string{}}
	for _, k := range kits {
		for _, d := range k.images {
			ann := map[string]string{registry.KitAnnotation: k.name}
			for a, v := range d.Annotations {
				ann[a] = v
			}
			d.Annotations = ann
			idx.Manifests = append(idx.Manifests, d)
		}
		st.Kits = append(st.Kits, site.KitState{Name: k.name, Version: "1.0.0", InstalledAt: k.installed, Images: len(k.images)})
	}
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		a, b := idx.Manifests[i].Annotations[ocispec.AnnotationRefName], idx.Manifests[j].Annotations[ocispec.AnnotationRefName]
		if a != b {
			return a < b
		}
		return idx.Manifests[i].Digest < idx.Manifests[j].Digest
	})
	b, err := json.Marshal(idx)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(meta, "images", "index.json"), b, 0o444))
	b, err = json.Marshal(st)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(meta, "state.json"), b, 0o444))
	tmp := filepath.Join(s.root, "current.tmp")
	must(t, os.Symlink(filepath.Join("generations", strconv.Itoa(s.gen)), tmp))
	must(t, os.Rename(tmp, filepath.Join(s.root, "current")))
}

// guardedView is the site's View that fails the test if the registry
// asks the store for a blob by anything but a valid digest.
type guardedView struct {
	*site.View
	mu  sync.Mutex
	bad []string
}

func (v *guardedView) Blob(d string) (*os.File, error) {
	if !reponame.ValidDigest(d) {
		v.mu.Lock()
		v.bad = append(v.bad, d)
		v.mu.Unlock()
	}
	return v.View.Blob(d)
}

var installedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestHostileKitIsolated: a generation holds a good kit and a hostile one
// (a kit install now refuses, written to disk as an older offkit or a
// damaged store would leave it). The good kit's images, tags and catalog
// entries serve exactly as with the good kit alone; none of the hostile
// kit's images is served, including its valid one; readiness fails naming
// the hostile kit and the reason, and the metric counts it. No bad digest
// reaches the store.
func TestHostileKitIsolated(t *testing.T) {
	for _, c := range []struct {
		name   string
		reason string
		// bad returns the hostile image (served, if it were, as
		// registry.example/good/app:9.9, in the good kit's repository).
		bad func(t *testing.T, s *diskSite) ocispec.Descriptor
	}{
		{"missing manifest", "not found", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("never stored"), Size: 12}
		}},
		{"indexes nested 12 deep", "nested deeper", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			d := s.image(t, "deep")
			for range 12 {
				d = s.index(t, d)
			}
			return d
		}},
		{"digest with a path", "digest", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../x", Size: 2}
		}},
		{"child digest with a path", "digest", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			return s.index(t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../../../etc/passwd", Size: 2})
		}},
		{"layer declared as a manifest", "invalid", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			b := make([]byte, 512)
			rand.Read(b)
			return s.put(t, b, ocispec.MediaTypeImageManifest)
		}},
		{"config declared as a manifest", "without a config", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			return s.put(t, []byte(`{"architecture":"amd64","os":"linux"}`), ocispec.MediaTypeImageManifest)
		}},
		{"index declared as a manifest", "declared as", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			d := s.index(t, s.image(t, "child"))
			d.MediaType = ocispec.MediaTypeImageManifest
			return d
		}},
		{"layer missing from the store", "not found", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			cfg := s.put(t, []byte(`{}`), ocispec.MediaTypeImageConfig)
			layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("not stored"), Size: 10}
			return s.manifest(t, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
		}},
		{"fan-out over the work bound", "reach more than", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			// One manifest of 10,000 layers, served in 120 repositories
			// (the last one good/app:9.9, the rest added below).
			cfg := s.put(t, []byte(`{}`), ocispec.MediaTypeImageConfig)
			layer := s.put(t, []byte("one layer"), ocispec.MediaTypeImageLayerGzip)
			layers := make([]ocispec.Descriptor, 10000)
			for i := range layers {
				layers[i] = layer
			}
			return s.manifest(t, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
		}},
		{"manifest over the size limit", "over", func(t *testing.T, s *diskSite) ocispec.Descriptor {
			d := s.image(t, "huge")
			d.Size = ocilayout.MaxManifestSize + 1
			return d
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newDiskSite(t)
			good := goodKit(t, s)
			evil := diskKit{name: "evil", installed: installedAt.Add(time.Hour), images: []ocispec.Descriptor{
				tagged(s.image(t, "evil ok"), "registry.example/evil/ok:1"),
				tagged(c.bad(t, s), "registry.example/good/app:9.9"),
			}}
			if strings.HasPrefix(c.name, "fan-out") {
				for i := range 120 {
					evil.images = append(evil.images, tagged(evil.images[1], fmt.Sprintf("registry.example/evil/fan%d:1", i)))
				}
			}

			// The good kit alone: what it serves is the reference.
			s.activate(t, good.kit)
			view := &guardedView{View: site.NewView(s.root)}
			reg := registry.New(view, registry.Options{})
			srv := httptest.NewServer(reg)
			t.Cleanup(srv.Close)
			f := &fixture{url: srv.URL}
			before := good.served(t, f)
			if err := reg.Ready(); err != nil {
				t.Fatalf("Ready with the good kit alone: %v", err)
			}

			s.activate(t, good.kit, evil)
			if after := good.served(t, f); after != before {
				t.Errorf("the good kit's images changed:\nbefore %s\nafter  %s", before, after)
			}
			if cat := catalog(t, f); cat != "good/app" {
				t.Errorf("catalog %q, want only the good kit's good/app", cat)
			}
			for path, code := range map[string]string{
				"/v2/evil/ok/manifests/1":                                 "NAME_UNKNOWN",
				"/v2/evil/ok/tags/list":                                   "NAME_UNKNOWN",
				"/v2/good/app/manifests/9.9":                              "MANIFEST_UNKNOWN",
				"/v2/good/app/manifests/" + string(evil.images[0].Digest): "MANIFEST_UNKNOWN",
			} {
				if r := f.do(t, "GET", path); r.code != 404 || errorCode(t, r) != code {
					t.Errorf("GET %s: %d %s, want 404 %s", path, r.code, r.body, code)
				}
			}
			err := reg.Ready()
			if err == nil || !strings.Contains(err.Error(), `kit "evil" isolated`) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Ready: %v, want it to name kit \"evil\" and %q", err, c.reason)
			}
			if strings.Contains(fmt.Sprint(err), `"good"`) {
				t.Errorf("Ready blames the good kit: %v", err)
			}
			if m := gather(t, reg); m[`offkit_registry_kits_isolated`] != 1 || m[`offkit_registry_kit_isolated{kit="evil"}`] != 1 {
				t.Errorf("metrics: %v", m)
			}
			view.mu.Lock()
			if len(view.bad) > 0 {
				t.Errorf("the store was asked for blobs by invalid digests: %q", view.bad)
			}
			view.mu.Unlock()
		})
	}
}

// TestTagTakeover: a kit installed after another claims the other's tag
// with a lower digest (as two references can meet once --strip-prefix maps
// them, which install cannot foresee). The kit active first keeps the tag,
// whatever the digests and kit names; the claim is withheld, readiness
// names both kits and the tag, and the later kit's other images serve.
func TestTagTakeover(t *testing.T) {
	s := newDiskSite(t)
	good := goodKit(t, s)
	var hijack ocispec.Descriptor
	for i := 0; ; i++ {
		if hijack = s.image(t, fmt.Sprint("hijack ", i)); hijack.Digest < good.image.Digest {
			break
		}
	}
	// "evil" sorts before "good": the name does not decide, the install
	// order does.
	evil := diskKit{name: "evil", installed: installedAt.Add(time.Hour), images: []ocispec.Descriptor{
		tagged(s.image(t, "evil ok"), "registry.example/evil/ok:1"),
		tagged(hijack, "other.example/stellaops/good/app:1.0"),
	}}
	s.activate(t, good.kit)
	reg := registry.New(site.NewView(s.root), registry.Options{Mapping: reponame.Mapping{StripPrefix: "stellaops/"}})
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	f := &fixture{url: srv.URL}
	before := good.served(t, f)

	s.activate(t, good.kit, evil)
	if after := good.served(t, f); after != before {
		t.Errorf("the good kit's tag was taken over:\nbefore %s\nafter  %s", before, after)
	}
	if r := f.do(t, "GET", "/v2/good/app/manifests/"+string(hijack.Digest)); r.code != 404 {
		t.Errorf("the withheld image is served in the good kit's repository: %d", r.code)
	}
	if cat := catalog(t, f); cat != "evil/ok,good/app" {
		t.Errorf("catalog %q", cat)
	}
	if r := f.do(t, "GET", "/v2/evil/ok/manifests/1"); r.code != 200 {
		t.Errorf("the later kit's own image: %d %s", r.code, r.body)
	}
	err := reg.Ready()
	if err == nil || !strings.Contains(err.Error(), `kit "evil": tag good/app:1.0`) || !strings.Contains(err.Error(), `kit "good", active first`) {
		t.Errorf("Ready: %v, want it to name both kits and the tag", err)
	}
	if m := gather(t, reg); m[`offkit_registry_tags_withheld{kit="evil"}`] != 1 || m[`offkit_registry_kits_isolated`] != 0 {
		t.Errorf("metrics: %v", m)
	}

	// Installed the other way round, the other kit keeps the tag.
	good.kit.installed, evil.installed = evil.installed, good.kit.installed
	s.activate(t, good.kit, evil)
	if r := f.do(t, "GET", "/v2/good/app/manifests/1.0"); r.header.Get("Docker-Content-Digest") != string(hijack.Digest) {
		t.Errorf("the kit installed first does not keep its tag: %d %s", r.code, r.header.Get("Docker-Content-Digest"))
	}
}

type good struct {
	kit   diskKit
	image ocispec.Descriptor
	layer string
}

// goodKit stores the good kit's image, registry.example/good/app:1.0.
func goodKit(t *testing.T, s *diskSite) good {
	t.Helper()
	img := s.image(t, "good")
	return good{
		kit:   diskKit{name: "good", installed: installedAt, images: []ocispec.Descriptor{tagged(img, "registry.example/good/app:1.0")}},
		image: img,
		layer: string(digest.FromString("layer of good")),
	}
}

// served is what a client sees of the good kit: its manifest by tag and
// digest, its layer and its tags.
func (g good) served(t *testing.T, f *fixture) string {
	t.Helper()
	var out []string
	for _, p := range []string{"/manifests/1.0", "/manifests/" + string(g.image.Digest), "/blobs/" + g.layer, "/tags/list"} {
		r := f.do(t, "GET", "/v2/good/app"+p)
		out = append(out, fmt.Sprintf("%s %d %s %s", p, r.code, r.header.Get("Docker-Content-Digest"), sha(r.body)))
		if r.code != 200 {
			t.Errorf("GET /v2/good/app%s: %d %s", p, r.code, r.body)
		}
	}
	return strings.Join(out, "\n       ")
}

// catalog returns the repositories the registry lists.
func catalog(t *testing.T, f *fixture) string {
	t.Helper()
	var cat struct{ Repositories []string }
	r := f.do(t, "GET", "/v2/_catalog")
	must(t, json.Unmarshal(r.body, &cat))
	return strings.Join(cat.Repositories, ",")
}

// gather returns the registry's metrics as "name{labels}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	pr := prometheus.NewPedanticRegistry()
	must(t, pr.Register(c))
	fams, err := pr.Gather()
	must(t, err)
	out := map[string]float64{}
	for _, fam := range fams {
		for _, m := range fam.GetMetric() {
			key := fam.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestReadyzNamesIsolatedKit: wired into offkit serve as cmd/offkit does,
// /readyz is 503 naming the isolated kit and /metrics counts it.
func TestReadyzNamesIsolatedKit(t *testing.T) {
	s := newDiskSite(t)
	good := goodKit(t, s)
	evil := diskKit{name: "evil", installed: installedAt.Add(time.Hour), images: []ocispec.Descriptor{
		tagged(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("never stored"), Size: 12}, "registry.example/evil/app:1"),
	}}
	s.activate(t, good.kit)
	reg := registry.New(site.NewView(s.root), registry.Options{})
	srv := serve.New(serve.Config{}, nil)
	srv.Handle("/v2/", "registry", reg)
	srv.Ready("registry", reg.Ready)
	srv.Metrics().MustRegister(reg)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz with the good kit alone: %d %s", code, body)
	}
	s.activate(t, good.kit, evil)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `registry: kit "evil" isolated`) || !strings.Contains(body, "not found") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `offkit_registry_kit_isolated{kit="evil"} 1`) || !strings.Contains(body, "offkit_registry_kits_isolated 1") {
		t.Errorf("/metrics lacks the isolated kit:\n%s", body)
	}
	if code, _ := get("/v2/good/app/manifests/1.0"); code != 200 {
		t.Errorf("the good kit's image: %d", code)
	}
}
