package kittest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// OCI builds the images/ part of a hand-made kit: blobs named by their
// digest, index.json and oci-layout, with the roles and media types the
// builder records.
type OCI struct {
	blobs map[string][]byte // path → content
	types map[string]string // path → media type of a manifest or index
	Index []ocispec.Descriptor
}

// Blob adds data as a blob and returns its descriptor, of media type
// mediaType; the entry records mediaType when it is a manifest or index
// type.
func (o *OCI) Blob(data []byte, mediaType string) ocispec.Descriptor {
	if o.blobs == nil {
		o.blobs, o.types = map[string][]byte{}, map[string]string{}
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := ocilayout.BlobDir + h
	o.blobs[p] = data
	if ocilayout.IsManifestType(mediaType) {
		o.types[p] = mediaType
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest("sha256:" + h), Size: int64(len(data))}
}

// Image adds the manifest, config and layers of img and returns the
// manifest's descriptor.
func (o *OCI) Image(t testing.TB, img v1.Image) ocispec.Descriptor {
	t.Helper()
	return addImage(t, img, o.Blob)
}

// addImage adds the config and layers of img with blob, then its manifest,
// whose descriptor it returns.
func addImage(t testing.TB, img v1.Image, blob func([]byte, string) ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	blob(cfg, string(m.Config.MediaType))
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		blob(b, "")
	}
	return blob(raw, string(mt))
}

// Tag adds d to index.json under the reference ref.
func (o *OCI) Tag(ref string, d ocispec.Descriptor) {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	o.Index = append(o.Index, d)
}

// Files returns the entries of the layout, index.json made from o.Index.
func (o *OCI) Files(t testing.TB) []Entry {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: o.Index}
	idx.SchemaVersion = 2
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	out := []Entry{File(ocilayout.IndexPath, b), File(ocilayout.MarkerPath, []byte(`{"imageLayoutVersion":"1.0.0"}`))}
	for p, b := range o.blobs {
		out = append(out, File(p, b))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Header.Name < out[j].Header.Name })
	return out
}

// Manifest lists entries as ManifestFor does, with the roles of the image
// layout's files and the media types of its manifests.
func (o *OCI) Manifest(entries []Entry) *manifest.Manifest {
	m := ManifestFor(entries)
	for i := range m.Entries {
		e := &m.Entries[i]
		e.Role = roleOf(e.Path)
		e.MediaType = o.types[e.Path]
		if e.Path == ocilayout.IndexPath {
			e.MediaType = ocispec.MediaTypeImageIndex
		}
	}
	return m
}

func roleOf(p string) manifest.Role {
	switch {
	case strings.HasPrefix(p, "images/blobs/"):
		return manifest.RoleImageBlob
	case strings.HasPrefix(p, "images/"):
		return manifest.RoleImageIndex
	}
	return manifest.RoleFile
}

// Contents is the content of a kit, to edit before Rewrite writes it again.
type Contents struct {
	Manifest *manifest.Manifest
	// Files holds the content entries by path. Rewrite lists them anew in
	// the manifest: an entry keeps the role and media type of the entry of
	// the same path (MediaTypes, which Blob fills), sizes and digests are
	// computed.
	Files      map[string][]byte
	MediaTypes map[string]string
}

// Blob adds data as an image blob named by its digest, recording
// mediaType in its entry when it is a manifest or index type, and returns
// its descriptor.
func (c *Contents) Blob(data []byte, mediaType string) ocispec.Descriptor {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	p := ocilayout.BlobDir + h
	c.Files[p] = data
	if ocilayout.IsManifestType(mediaType) {
		c.MediaTypes[p] = mediaType
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest("sha256:" + h), Size: int64(len(data))}
}

// Image adds the manifest, config and layers of img and returns the
// manifest's descriptor.
func (c *Contents) Image(t testing.TB, img v1.Image) ocispec.Descriptor {
	t.Helper()
	return addImage(t, img, c.Blob)
}

// Index returns the kit's images/index.json, parsed.
func (c *Contents) Index(t testing.TB) *ocispec.Index {
	t.Helper()
	var idx ocispec.Index
	if err := json.Unmarshal(c.Files[ocilayout.IndexPath], &idx); err != nil {
		t.Fatal(err)
	}
	return &idx
}

// SetIndex replaces the kit's images/index.json.
func (c *Contents) SetIndex(t testing.TB, idx *ocispec.Index) {
	t.Helper()
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	c.Files[ocilayout.IndexPath] = b
}

// Rewrite reads the kit at path, lets edit change its manifest and files,
// and writes it again, signed by key, to a new file whose path it returns:
// a hostile kit whose only fault is what edit did.
func Rewrite(t testing.TB, path string, key *Key, edit func(c *Contents)) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	c := &Contents{Files: map[string][]byte{}, MediaTypes: map[string]string{}}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case kitfile.ManifestPath:
			if c.Manifest, err = manifest.Parse(b); err != nil {
				t.Fatal(err)
			}
		case kitfile.SignaturePath, kitfile.SumsPath:
		default:
			c.Files[h.Name] = b
		}
	}
	roles := map[string]manifest.Role{}
	for _, e := range c.Manifest.Entries {
		roles[e.Path] = e.Role
		c.MediaTypes[e.Path] = e.MediaType
	}
	edit(c)
	var content []Entry
	for p, b := range c.Files {
		content = append(content, File(p, b))
	}
	sort.Slice(content, func(i, j int) bool { return content[i].Header.Name < content[j].Header.Name })
	fresh := ManifestFor(content)
	m := c.Manifest
	m.Entries = fresh.Entries
	for i := range m.Entries {
		e := &m.Entries[i]
		e.Role = roleOf(e.Path)
		if r, ok := roles[e.Path]; ok {
			e.Role = r
		}
		e.MediaType = c.MediaTypes[e.Path]
	}
	return (&Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), m.FileName()))
}
