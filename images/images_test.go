package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
)

// newRegistry starts an in-memory registry on loopback and returns its host.
func newRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func randomImage(t *testing.T, os, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pushIndex(t *testing.T, ref string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func multiArch(t *testing.T, plats ...v1.Platform) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for _, p := range plats {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        randomImage(t, p.OS, p.Architecture),
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx
}

func collect(t *testing.T, srcs []manifest.ImageSource, opts images.Options) (string, []manifest.Image) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	got, err := images.Collect(context.Background(), srcs, dir, opts)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	checkLayout(t, dir)
	return dir, got
}

// checkLayout checks that every blob has the digest it is named by, and that
// go-containerregistry reads every image of index.json back.
func checkLayout(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob %s has digest %x", e.Name(), sum)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cm, err := child.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cm.Manifests {
				checkImage(t, child, c.Digest)
			}
			continue
		}
		checkImage(t, idx, d.Digest)
	}
}

func checkImage(t *testing.T, idx v1.ImageIndex, h v1.Hash) {
	t.Helper()
	img, err := idx.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.RawConfigFile(); err != nil {
		t.Errorf("image %s: config: %v", h, err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Errorf("image %s: layer: %v", h, err)
			continue
		}
		rc.Close()
	}
}

func readIndex(t *testing.T, dir string) ocispec.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func refNames(idx ocispec.Index) []string {
	var out []string
	for _, d := range idx.Manifests {
		out = append(out, d.Annotations[ocispec.AnnotationRefName])
	}
	return out
}

func TestRegistryTagAndDigest(t *testing.T) {
	host := newRegistry(t)
	img := randomImage(t, "linux", "amd64")
	tagRef := host + "/stellaops/zastava-observer:1.4.2"
	d := kittest.Push(t, tagRef, img)
	digestRef := host + "/stellaops/zastava-observer@" + d.String()

	srcs := []manifest.ImageSource{{Ref: tagRef}, {Ref: digestRef}}
	dir, got := collect(t, srcs, images.Options{PlainHTTP: true})
	if len(got) != 2 {
		t.Fatalf("got %d images", len(got))
	}
	mt, _ := img.MediaType()
	for i, g := range got {
		if g.Reference != srcs[i].Ref || g.Digest != d.String() || g.MediaType != string(mt) {
			t.Errorf("image %d = %+v, want ref %s digest %s", i, g, srcs[i].Ref, d)
		}
		if !slices.Equal(g.Platforms, []string{"linux/amd64"}) {
			t.Errorf("image %d platforms = %v", i, g.Platforms)
		}
		if len(g.Signatures) != 0 {
			t.Errorf("image %d signatures = %v", i, g.Signatures)
		}
	}
	idx := readIndex(t, dir)
	want := []string{digestRef, tagRef}
	slices.Sort(want)
	if !slices.Equal(refNames(idx), want) {
		t.Errorf("index.json ref names = %v, want %v", refNames(idx), want)
	}
	// One manifest, one config, two layers.
	if n := countBlobs(t, dir); n != 4 {
		t.Errorf("%d blobs, want 4", n)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || !bytes.Contains(b, []byte(`"imageLayoutVersion":"1.0.0"`)) {
		t.Errorf("oci-layout = %q, %v", b, err)
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestMultiArchWholeAndFiltered(t *testing.T) {
	host := newRegistry(t)
	plats := []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "s390x"},
	}
	idx := multiArch(t, plats...)
	ref := host + "/stellaops/multi:1"
	d := pushIndex(t, ref, idx)

	dir, got := collect(t, []manifest.ImageSource{{Ref: ref}}, images.Options{})
	if got[0].Digest != d.String() || got[0].MediaType != string(types.OCIImageIndex) {
		t.Errorf("whole index = %+v, want digest %s", got[0], d)
	}
	if want := []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}; !slices.Equal(got[0].Platforms, want) {
		t.Errorf("platforms = %v, want %v", got[0].Platforms, want)
	}
	// index + 3 × (manifest + config + 2 layers)
	if n := countBlobs(t, dir); n != 13 {
		t.Errorf("%d blobs, want 13", n)
	}

	ref2 := host + "/stellaops/multi-filtered:1"
	pushIndex(t, ref2, idx)
	dir, got = collect(t, []manifest.ImageSource{{Ref: ref2, Platforms: []string{"linux/arm64", "linux/amd64"}}}, images.Options{})
	if got[0].Digest == d.String() {
		t.Error("filtered index has the digest of the whole one")
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(got[0].Platforms, want) {
		t.Errorf("platforms = %v, want %v", got[0].Platforms, want)
	}
	if n := countBlobs(t, dir); n != 9 {
		t.Errorf("%d blobs, want 9", n)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(got[0].Digest)
	child, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := child.ImageIndex(h)
	if err != nil {
		t.Fatal(err)
	}
	fm, err := fi.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(fm.Manifests) != 2 || fm.MediaType != types.OCIImageIndex {
		t.Errorf("filtered index = %+v", fm)
	}

	_, err = images.Collect(context.Background(), []manifest.ImageSource{{Ref: ref2, Platforms: []string{"linux/riscv64"}}}, t.TempDir(), images.Options{})
	if !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("absent platform: err = %v, want ErrNotFound", err)
	}
	_, err = images.Collect(context.Background(), []manifest.ImageSource{{Ref: ref2, Platforms: []string{"linux"}}}, t.TempDir(), images.Options{})
	if !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("bad platform: err = %v, want ErrInvalid", err)
	}
}

func writeLayout(t *testing.T, dir string, imgs map[string]v1.Image) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(imgs))
	for n := range imgs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := p.AppendImage(imgs[n], layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: n})); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLayoutSource(t *testing.T) {
	base := t.TempDir()
	a, b := randomImage(t, "linux", "amd64"), randomImage(t, "linux", "arm64")
	writeLayout(t, filepath.Join(base, "one"), map[string]v1.Image{"1.0": a})
	writeLayout(t, filepath.Join(base, "two"), map[string]v1.Image{"1.0": a, "2.0": b})
	da, _ := a.Digest()
	db, _ := b.Digest()

	srcs := []manifest.ImageSource{
		{Ref: "registry.example/stellaops/a:1.0", Layout: "one"},
		{Ref: "registry.example/stellaops/b:2.0", Layout: "two", LayoutRef: "2.0"},
	}
	dir, got := collect(t, srcs, images.Options{BaseDir: base})
	if got[0].Digest != da.String() || got[1].Digest != db.String() {
		t.Errorf("digests = %s %s, want %s %s", got[0].Digest, got[1].Digest, da, db)
	}
	if !slices.Equal(got[1].Platforms, []string{"linux/arm64"}) {
		t.Errorf("platforms = %v", got[1].Platforms)
	}
	if names := refNames(readIndex(t, dir)); !slices.Equal(names, []string{"registry.example/stellaops/a:1.0", "registry.example/stellaops/b:2.0"}) {
		t.Errorf("ref names = %v", names)
	}

	ctx := context.Background()
	for _, tc := range []struct {
		src  manifest.ImageSource
		want error
	}{
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Layout: "two"}, errdef.ErrInvalid},
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Layout: "two", LayoutRef: "3.0"}, errdef.ErrNotFound},
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Layout: "absent"}, errdef.ErrNotFound},
		{manifest.ImageSource{Ref: "r.example/stellaops/x@" + db.String(), Layout: "one"}, errdef.ErrDigestMismatch},
	} {
		_, err := images.Collect(ctx, []manifest.ImageSource{tc.src}, t.TempDir(), images.Options{BaseDir: base})
		if !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.src, err, tc.want)
		}
	}

	// A layer altered in the source layout is refused.
	ls, _ := a.Layers()
	lh, _ := ls[0].Digest()
	blob := filepath.Join(base, "one", "blobs", "sha256", lh.Hex)
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = images.Collect(ctx, srcs[:1], t.TempDir(), images.Options{BaseDir: base})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), lh.String()) {
		t.Errorf("altered blob: err = %v, want ErrDigestMismatch naming %s", err, lh)
	}
}

func TestDockerArchiveSource(t *testing.T) {
	base := t.TempDir()
	a, b := randomImage(t, "linux", "amd64"), randomImage(t, "linux", "arm64")
	ta, _ := name.NewTag("stellaops/a:1")
	tb, _ := name.NewTag("stellaops/b:2")
	if err := tarball.WriteToFile(filepath.Join(base, "one.tar"), ta, a); err != nil {
		t.Fatal(err)
	}
	if err := tarball.MultiWriteToFile(filepath.Join(base, "two.tar"), map[name.Tag]v1.Image{ta: a, tb: b}); err != nil {
		t.Fatal(err)
	}
	srcs := []manifest.ImageSource{
		{Ref: "registry.example/stellaops/a:1", Archive: "one.tar"},
		{Ref: "registry.example/stellaops/b:2", Archive: filepath.Join(base, "two.tar"), ArchiveTag: "stellaops/b:2"},
	}
	dir, got := collect(t, srcs, images.Options{BaseDir: base})
	for i, want := range []v1.Image{a, b} {
		cfg, _ := want.ConfigName()
		h, _ := v1.NewHash(got[i].Digest)
		p, _ := layout.FromPath(dir)
		img, err := p.Image(h)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := img.ConfigName(); c != cfg {
			t.Errorf("image %d: config %s, want %s", i, c, cfg)
		}
	}
	if !slices.Equal(got[1].Platforms, []string{"linux/arm64"}) {
		t.Errorf("platforms = %v", got[1].Platforms)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		src  manifest.ImageSource
		want error
	}{
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Archive: "two.tar"}, errdef.ErrInvalid},
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Archive: "two.tar", ArchiveTag: "stellaops/c:3"}, errdef.ErrNotFound},
		{manifest.ImageSource{Ref: "r.example/stellaops/x:1", Archive: "absent.tar"}, errdef.ErrNotFound},
	} {
		_, err := images.Collect(ctx, []manifest.ImageSource{tc.src}, t.TempDir(), images.Options{BaseDir: base})
		if !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.src, err, tc.want)
		}
	}
}

func TestSharedBlobsStoredOnce(t *testing.T) {
	host := newRegistry(t)
	base := randomImage(t, "linux", "amd64")
	l, err := random.Layer(256, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	kittest.Push(t, host+"/stellaops/base:1", base)
	kittest.Push(t, host+"/stellaops/derived:1", derived)
	dir, _ := collect(t, []manifest.ImageSource{
		{Ref: host + "/stellaops/base:1"},
		{Ref: host + "/stellaops/derived:1"},
	}, images.Options{Jobs: 8})
	// base: manifest, config, 2 layers; derived: manifest, config, its own layer.
	if n := countBlobs(t, dir); n != 7 {
		t.Errorf("%d blobs, want 7", n)
	}
}

func TestCosignSignatureCarried(t *testing.T) {
	host := newRegistry(t)
	img := randomImage(t, "linux", "amd64")
	ref := host + "/stellaops/signed:1"
	d := kittest.Push(t, ref, img)
	sig, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	sigTag := "sha256-" + d.Hex + ".sig"
	sd := kittest.Push(t, host+"/stellaops/signed:"+sigTag, sig)

	dir, got := collect(t, []manifest.ImageSource{{Ref: ref}}, images.Options{})
	if !slices.Equal(got[0].Signatures, []string{sd.String()}) {
		t.Errorf("signatures = %v, want %s", got[0].Signatures, sd)
	}
	idx := readIndex(t, dir)
	want := []string{ref, host + "/stellaops/signed:" + sigTag}
	if !slices.Equal(refNames(idx), want) {
		t.Errorf("ref names = %v, want %v", refNames(idx), want)
	}
	if idx.Manifests[1].Digest.String() != sd.String() {
		t.Errorf("signature entry digest %s, want %s", idx.Manifests[1].Digest, sd)
	}
	// image: 4 blobs; signature: manifest, config, 1 layer.
	if n := countBlobs(t, dir); n != 7 {
		t.Errorf("%d blobs, want 7", n)
	}
}

func TestDeterministic(t *testing.T) {
	host := newRegistry(t)
	base := t.TempDir()
	img := randomImage(t, "linux", "amd64")
	d := kittest.Push(t, host+"/stellaops/one:1", img)
	kittest.Push(t, host+"/stellaops/one:sha256-"+d.Hex+".sig", randomImage(t, "", ""))
	pushIndex(t, host+"/stellaops/multi:2", multiArch(t,
		v1.Platform{OS: "linux", Architecture: "amd64"},
		v1.Platform{OS: "linux", Architecture: "arm64"}))
	writeLayout(t, filepath.Join(base, "lay"), map[string]v1.Image{"x": randomImage(t, "linux", "arm64")})
	tag, _ := name.NewTag("a:1")
	if err := tarball.WriteToFile(filepath.Join(base, "a.tar"), tag, randomImage(t, "linux", "amd64")); err != nil {
		t.Fatal(err)
	}
	srcs := []manifest.ImageSource{
		{Ref: host + "/stellaops/one:1"},
		{Ref: host + "/stellaops/one@" + d.String()},
		{Ref: host + "/stellaops/multi:2", Platforms: []string{"linux/arm64"}},
		{Ref: "registry.example/stellaops/lay:x", Layout: "lay"},
		{Ref: "registry.example/stellaops/a:1", Archive: "a.tar"},
	}
	opts := images.Options{BaseDir: base, Jobs: 3}
	dir1, got1 := collect(t, srcs, opts)
	dir2, _ := collect(t, srcs, opts)
	rev := slices.Clone(srcs)
	slices.Reverse(rev)
	dir3, got3 := collect(t, rev, images.Options{BaseDir: base, Jobs: 1})
	sameTree(t, dir1, dir2)
	sameTree(t, dir1, dir3)
	for i := range got1 {
		a, _ := json.Marshal(got1[i])
		b, _ := json.Marshal(got3[len(got3)-1-i])
		if !bytes.Equal(a, b) {
			t.Errorf("image %d: %s vs %s", i, a, b)
		}
	}
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fa, fb := files(a), files(b)
	if len(fa) != len(fb) {
		t.Errorf("%d files vs %d", len(fa), len(fb))
	}
	for p, x := range fa {
		if y, ok := fb[p]; !ok || !bytes.Equal(x, y) {
			t.Errorf("%s differs", p)
		}
	}
}

func TestErrors(t *testing.T) {
	host := newRegistry(t)
	kittest.Push(t, host+"/stellaops/one:1", randomImage(t, "linux", "amd64"))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		srcs []manifest.ImageSource
		want error
	}{
		{"missing tag", []manifest.ImageSource{{Ref: host + "/stellaops/one:2"}}, errdef.ErrNotFound},
		{"missing repo", []manifest.ImageSource{{Ref: host + "/stellaops/none:1"}}, errdef.ErrNotFound},
		{"missing digest", []manifest.ImageSource{{Ref: host + "/stellaops/one@sha256:" + strings.Repeat("0", 64)}}, errdef.ErrNotFound},
		{"bad ref", []manifest.ImageSource{{Ref: host + "/Stella Ops::1"}}, errdef.ErrInvalid},
		{"bad digest", []manifest.ImageSource{{Ref: host + "/stellaops/one@sha256:abc"}}, errdef.ErrInvalid},
		{"duplicate", []manifest.ImageSource{{Ref: host + "/stellaops/one:1"}, {Ref: host + "/stellaops/one:1"}}, errdef.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := images.Collect(ctx, tc.srcs, t.TempDir(), images.Options{})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReferrersCarried(t *testing.T) {
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	img := randomImage(t, "linux", "amd64")
	ref := host + "/stellaops/attested:1"
	d := kittest.Push(t, ref, img)
	mt, _ := img.MediaType()
	sz, _ := img.Size()
	sbom, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	sbom = mutate.MediaType(sbom, types.OCIManifestSchema1)
	sbom = mutate.ConfigMediaType(sbom, "application/vnd.example.sbom")
	sbom = mutate.Subject(sbom, v1.Descriptor{MediaType: mt, Size: sz, Digest: d}).(v1.Image)
	rd := kittest.Push(t, host+"/stellaops/attested@"+mustDigest(t, sbom).String(), sbom)

	dir, got := collect(t, []manifest.ImageSource{{Ref: ref}}, images.Options{})
	want := []string{ref, host + "/stellaops/attested@" + rd.String()}
	if names := refNames(readIndex(t, dir)); !slices.Equal(names, want) {
		t.Errorf("ref names = %v, want %v", names, want)
	}
	if len(got[0].Signatures) != 0 {
		t.Errorf("signatures = %v", got[0].Signatures)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
