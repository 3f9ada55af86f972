package ocilayout_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/manifest"
)

const repo = "registry.example/stellaops/app"

// check runs New, Add and Check over the layout o, with images[] from
// images, as verify does.
func check(t *testing.T, o *kittest.OCI, images []manifest.Image) ([]byte, error) {
	t.Helper()
	files := o.Files(t)
	m := o.Manifest(files)
	m.Images = images
	l, err := ocilayout.New(m)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		l.Add(f.Header.Name, f.Data)
	}
	return l.Check()
}

func image(ref string, d ocispec.Descriptor, sigs ...ocispec.Descriptor) manifest.Image {
	im := manifest.Image{Reference: ref, Digest: string(d.Digest), MediaType: d.MediaType}
	for _, s := range sigs {
		im.Signatures = append(im.Signatures, string(s.Digest))
	}
	return im
}

func index(t *testing.T, o *kittest.OCI, children ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
	if err != nil {
		t.Fatal(err)
	}
	return o.Blob(b, ocispec.MediaTypeImageIndex)
}

func imageManifest(t *testing.T, o *kittest.OCI, config ocispec.Descriptor, subject *ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return o.Blob(b, ocispec.MediaTypeImageManifest)
}

func newImage(t testing.TB, o *kittest.OCI) ocispec.Descriptor {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return o.Image(t, img)
}

func wantInvalid(t *testing.T, err error, substr string) {
	t.Helper()
	if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), substr) {
		t.Fatalf("err = %v, want exit 11 naming %q", err, substr)
	}
}

// TestAttachments: an image's cosign tags (of the image and of the
// children of its index) and referrers are served beside it; anything
// attached to no image of images[] is refused.
func TestAttachments(t *testing.T) {
	o := &kittest.OCI{}
	child := newImage(t, o)
	idx := index(t, o, child)
	sig := newImage(t, o)
	childSig := newImage(t, o)
	att := newImage(t, o)
	cfg := o.Blob([]byte("{}"), "application/vnd.example.sbom")
	ref := imageManifest(t, o, cfg, &idx)
	o.Tag(repo+":1", idx)
	o.Tag(repo+":sha256-"+idx.Digest.Encoded()+".sig", sig)
	o.Tag(repo+":sha256-"+child.Digest.Encoded()+".sig", childSig)
	o.Tag(repo+":sha256-"+idx.Digest.Encoded()+".att", att)
	o.Tag(repo+"@"+string(ref.Digest), ref)
	images := []manifest.Image{image(repo+":1", idx, sig, childSig)}
	raw, err := check(t, o, images)
	if err != nil {
		t.Fatal(err)
	}
	var got ocispec.Index
	if err := json.Unmarshal(raw, &got); err != nil || len(got.Manifests) != 5 {
		t.Fatalf("index %s: %v", raw, err)
	}

	// A .sig the image does not list.
	_, err = check(t, o, []manifest.Image{image(repo+":1", idx, sig)})
	wantInvalid(t, err, "sha256-"+child.Digest.Encoded()+".sig")
	// A signature the image lists that index.json lacks.
	_, err = check(t, o, []manifest.Image{image(repo+":1", idx, sig, childSig, att)})
	wantInvalid(t, err, "signature manifest "+string(att.Digest)+" is not in images/index.json")
	// Tags of another repository.
	_, err = check(t, o, []manifest.Image{image("registry.example/other:1", idx, sig, childSig)})
	wantInvalid(t, err, "neither an image")

	// A referrer whose subject is no image of images[].
	o2 := &kittest.OCI{}
	img := newImage(t, o2)
	stray := newImage(t, o2)
	ref2 := imageManifest(t, o2, o2.Blob([]byte("{}"), "application/vnd.example.sbom"), &stray)
	o2.Tag(repo+":1", img)
	o2.Tag(repo+"@"+string(ref2.Digest), ref2)
	_, err = check(t, o2, []manifest.Image{image(repo+":1", img)})
	wantInvalid(t, err, repo+"@"+string(ref2.Digest))
}

// TestDepth: indexes nest at most MaxDepth deep below index.json, counted
// as the registry of `offkit serve` counts them.
func TestDepth(t *testing.T) {
	for _, n := range []int{ocilayout.MaxDepth, ocilayout.MaxDepth + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			o := &kittest.OCI{}
			d := newImage(t, o)
			for range n {
				d = index(t, o, d)
			}
			o.Tag(repo+":1", d)
			_, err := check(t, o, []manifest.Image{image(repo+":1", d)})
			if n <= ocilayout.MaxDepth {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantInvalid(t, err, "nested deeper than 8")
		})
	}
	// A DAG reached first shallow, then deeper through another image.
	o := &kittest.OCI{}
	d := newImage(t, o)
	for range ocilayout.MaxDepth {
		d = index(t, o, d)
	}
	o.Tag(repo+":a", d)
	deeper := index(t, o, d)
	o.Tag(repo+":b", deeper)
	_, err := check(t, o, []manifest.Image{image(repo+":a", d), image(repo+":b", deeper)})
	wantInvalid(t, err, "nested deeper than 8")
}

// TestLayers: a layer is carried, or is foreign or non-distributable.
func TestLayers(t *testing.T) {
	o := &kittest.OCI{}
	cfg := o.Blob([]byte("{}"), ocispec.MediaTypeImageConfig)
	missing := digest.Digest("sha256:" + strings.Repeat("cd", 32))
	foreign := ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Digest: missing, Size: 5}
	m := imageManifest(t, o, cfg, nil, foreign)
	o.Tag(repo+":1", m)
	if _, err := check(t, o, []manifest.Image{image(repo+":1", m)}); err != nil {
		t.Fatal(err)
	}
	o = &kittest.OCI{}
	cfg = o.Blob([]byte("{}"), ocispec.MediaTypeImageConfig)
	m = imageManifest(t, o, cfg, nil, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: missing, Size: 5})
	o.Tag(repo+":1", m)
	_, err := check(t, o, []manifest.Image{image(repo+":1", m)})
	wantInvalid(t, err, "layers[0]: blob "+string(missing)+": not in the kit")

	// A size that lies.
	o = &kittest.OCI{}
	cfg = o.Blob([]byte("{}"), ocispec.MediaTypeImageConfig)
	cfg.Size++
	m = imageManifest(t, o, cfg, nil)
	o.Tag(repo+":1", m)
	_, err = check(t, o, []manifest.Image{image(repo+":1", m)})
	wantInvalid(t, err, "size 3, but images/blobs/sha256/")
}

// TestReferences: every ref.name maps to a served name, a reference pinned
// by digest pins the image's digest, and index.json names every image.
func TestReferences(t *testing.T) {
	o := &kittest.OCI{}
	d := newImage(t, o)
	o.Tag("registry.example/Stellaops/App:1", d)
	_, err := check(t, o, []manifest.Image{image("registry.example/Stellaops/App:1", d)})
	wantInvalid(t, err, "registry.example/Stellaops/App:1")

	o = &kittest.OCI{}
	d = newImage(t, o)
	other := newImage(t, o)
	o.Tag(repo+"@"+string(other.Digest), d)
	_, err = check(t, o, []manifest.Image{image(repo+"@"+string(other.Digest), d)})
	wantInvalid(t, err, "pins another digest")

	o = &kittest.OCI{}
	d = newImage(t, o)
	o.Tag(repo+":1", d)
	_, err = check(t, o, []manifest.Image{image(repo+":1", d), image(repo+":2", d)})
	wantInvalid(t, err, `images[1] "`+repo+`:2": not in images/index.json`)
}

// TestLimits: at each limit passes, one byte over fails as the manifest is
// read, before any content.
func TestLimits(t *testing.T) {
	blob := func(i int, size int64, mt string) manifest.Entry {
		h := fmt.Sprintf("%064x", i)
		return manifest.Entry{Path: ocilayout.BlobDir + h, SHA256: h, Size: size, MediaType: mt, Role: manifest.RoleImageBlob}
	}
	head := []manifest.Entry{
		{Path: ocilayout.IndexPath, Size: ocilayout.MaxIndexSize, Role: manifest.RoleImageIndex},
		{Path: ocilayout.MarkerPath, Size: ocilayout.MaxMarkerSize, Role: manifest.RoleImageIndex},
	}
	for _, c := range []struct {
		name    string
		entries []manifest.Entry
		substr  string
	}{
		{name: "at the limits", entries: []manifest.Entry{blob(1, ocilayout.MaxManifestSize, ocilayout.OCIManifest), blob(2, 1<<30, "")}},
		{name: "index over", entries: []manifest.Entry{{Path: ocilayout.IndexPath, Size: ocilayout.MaxIndexSize + 1}}, substr: "images/index.json"},
		{name: "marker over", entries: []manifest.Entry{{Path: ocilayout.MarkerPath, Size: ocilayout.MaxMarkerSize + 1}}, substr: "images/oci-layout"},
		{name: "manifest over", entries: []manifest.Entry{blob(1, ocilayout.MaxManifestSize+1, ocilayout.OCIManifest)}, substr: fmt.Sprintf("%064x", 1)},
		{name: "unknown media type", entries: []manifest.Entry{blob(1, 10, "application/vnd.oci.image.layer.v1.tar")}, substr: "not a manifest or index type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &manifest.Manifest{}
			for _, e := range head {
				if !containsPath(c.entries, e.Path) {
					m.Entries = append(m.Entries, e)
				}
			}
			m.Entries = append(m.Entries, c.entries...)
			manifest.SortEntries(m.Entries)
			_, err := ocilayout.New(m)
			if c.substr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantInvalid(t, err, c.substr)
		})
	}
	// All manifests together: MaxManifestBytes pass, one more byte fails.
	m := &manifest.Manifest{Entries: head}
	n := ocilayout.MaxManifestBytes / ocilayout.MaxManifestSize
	for i := range n {
		m.Entries = append(m.Entries, blob(i+1, ocilayout.MaxManifestSize, ocilayout.OCIManifest))
	}
	manifest.SortEntries(m.Entries)
	if _, err := ocilayout.New(m); err != nil {
		t.Fatal(err)
	}
	m.Entries = append(m.Entries, blob(n+1, 1, ocilayout.OCIIndex))
	manifest.SortEntries(m.Entries)
	_, err := ocilayout.New(m)
	wantInvalid(t, err, "for all manifests of a kit")
}

func containsPath(es []manifest.Entry, p string) bool {
	for _, e := range es {
		if e.Path == p {
			return true
		}
	}
	return false
}

// TestMarker: images/oci-layout says 1.0.0.
func TestMarker(t *testing.T) {
	o := &kittest.OCI{}
	d := newImage(t, o)
	o.Tag(repo+":1", d)
	files := o.Files(t)
	m := o.Manifest(files)
	m.Images = []manifest.Image{image(repo+":1", d)}
	l, err := ocilayout.New(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b := f.Data
		if f.Header.Name == ocilayout.MarkerPath {
			b = []byte(`{"imageLayoutVersion":"2.0.0"}`)
		}
		l.Add(f.Header.Name, b)
	}
	_, err = l.Check()
	wantInvalid(t, err, "images/oci-layout")
}

// TestServedTwice: two references served as one repository:tag (the
// registry host is dropped) name one digest.
func TestServedTwice(t *testing.T) {
	o := &kittest.OCI{}
	a, b := newImage(t, o), newImage(t, o)
	o.Tag("a.example/team/app:1", a)
	o.Tag("b.example/team/app:1", b)
	_, err := check(t, o, []manifest.Image{image("a.example/team/app:1", a), image("b.example/team/app:1", b)})
	wantInvalid(t, err, "both served as team/app:1")

	o = &kittest.OCI{}
	a = newImage(t, o)
	o.Tag("a.example/team/app:1", a)
	o.Tag("b.example/team/app:1", a)
	if _, err := check(t, o, []manifest.Image{image("a.example/team/app:1", a), image("b.example/team/app:1", a)}); err != nil {
		t.Fatal(err)
	}
}

// TestReach: what a registry would walk, repository by repository, is
// bounded (MaxReach), however small the kit.
func TestReach(t *testing.T) {
	o := &kittest.OCI{}
	child := newImage(t, o)
	children := make([]ocispec.Descriptor, 1000)
	for i := range children {
		children[i] = child
	}
	idx := index(t, o, children...)
	per := 1 + len(children) + 1 + 1 // the index, then the image and its layer once
	var images []manifest.Image
	for i := range ocilayout.MaxReach/per + 1 {
		ref := fmt.Sprintf("registry.example/r%d:1", i)
		o.Tag(ref, idx)
		images = append(images, image(ref, idx))
	}
	_, err := check(t, o, images)
	wantInvalid(t, err, "reach more than")
	// One repository fewer is within the bound.
	o.Index = o.Index[:len(o.Index)-1]
	if _, err := check(t, o, images[:len(images)-1]); err != nil {
		t.Fatal(err)
	}
}
