package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// TestImageLayoutHostile rewrites a kit built with one signed image (a
// cosign .sig tag beside it) into hostile kits, each signed by the trusted
// kit key, whose only fault is in images/: each is refused with exit 11,
// naming the path, reference or digest at fault (issue 6, findings 1, 2, 4).
func TestImageLayoutHostile(t *testing.T) {
	kitKey, imageKey := kittest.NewKey(t), kittest.NewKey(t)
	base := kittest.ImageKit(t, kitKey, imageKey)
	im := base.Manifest.Images[0]
	repo := im.Reference[:strings.LastIndexByte(im.Reference, ':')]
	unsigned, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The kit as built verifies, with the image key, and gives its index.
	o := opts(kitKey)
	o.ImageKeys = []*sign.PublicKey{imageKey.Public}
	v, err := verify.File(ctx, base.Path, o)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(v.ImageIndex, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("ImageIndex %s: %v", v.ImageIndex, err)
	}
	// So does the kit rewritten with no change: the faults below are the
	// edits alone.
	if _, err := verify.File(ctx, kittest.Rewrite(t, base.Path, kitKey, func(*kittest.Contents) {}), o); err != nil {
		t.Fatal(err)
	}

	// addImage serves d under ref, listing it in images[] too (unsigned).
	addImage := func(t *testing.T, c *kittest.Contents, ref string, d ocispec.Descriptor) {
		idx := c.Index(t)
		d.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
		idx.Manifests = append(idx.Manifests, d)
		c.SetIndex(t, idx)
		c.Manifest.Images = append(c.Manifest.Images, manifest.Image{Reference: ref, Digest: string(d.Digest), MediaType: d.MediaType})
	}
	// setEntry changes the descriptor of ref in index.json.
	setEntry := func(t *testing.T, c *kittest.Contents, ref string, d ocispec.Descriptor) {
		idx := c.Index(t)
		for i, m := range idx.Manifests {
			if m.Annotations[ocispec.AnnotationRefName] == ref {
				d.Annotations = m.Annotations
				idx.Manifests[i] = d
			}
		}
		c.SetIndex(t, idx)
	}
	imBlob := "images/blobs/sha256/" + strings.TrimPrefix(im.Digest, "sha256:")
	lower := strings.Repeat("ab", 32)

	cases := []struct {
		name      string
		edit      func(t *testing.T, c *kittest.Contents)
		imageKeys bool // verify with --image-key
		code      int
		substr    []string
	}{
		// 1. What is served must be what was signed.
		{
			name:      "no images[] while index.json names an image",
			edit:      func(t *testing.T, c *kittest.Contents) { c.Manifest.Images = nil },
			imageKeys: true, code: errdef.ExitInvalid, substr: []string{im.Reference, "neither an image of the manifest's images[]"},
		},
		{
			name: "images[] names a signed decoy while index.json serves an unsigned manifest",
			edit: func(t *testing.T, c *kittest.Contents) {
				setEntry(t, c, im.Reference, c.Image(t, unsigned))
			},
			imageKeys: true, code: errdef.ExitInvalid, substr: []string{im.Reference, "images[0] says " + im.Digest},
		},
		{
			name: "a second, unsigned manifest under the signed image's reference",
			edit: func(t *testing.T, c *kittest.Contents) {
				d := c.Image(t, unsigned)
				idx := c.Index(t)
				d.Annotations = map[string]string{ocispec.AnnotationRefName: im.Reference}
				idx.Manifests = append(idx.Manifests, d)
				c.SetIndex(t, idx)
			},
			imageKeys: true, code: errdef.ExitInvalid, substr: []string{im.Reference, "named twice"},
		},
		// 2. One kit cannot break or hijack another kit's images.
		{
			name:   "index.json names a missing manifest",
			edit:   func(t *testing.T, c *kittest.Contents) { delete(c.Files, imBlob) },
			code:   errdef.ExitInvalid,
			substr: []string{im.Digest, "not in the kit"},
		},
		{
			name: "indexes nested a dozen deep",
			edit: func(t *testing.T, c *kittest.Contents) {
				d := c.Image(t, unsigned)
				for range 12 {
					b, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}})
					d = c.Blob(b, ocispec.MediaTypeImageIndex)
				}
				addImage(t, c, repo+":nested", d)
			},
			code: errdef.ExitInvalid, substr: []string{"nested deeper than 8"},
		},
		{
			name: "a digest that is a path",
			edit: func(t *testing.T, c *kittest.Contents) {
				setEntry(t, c, im.Reference, ocispec.Descriptor{MediaType: im.MediaType, Digest: "sha256:../../x", Size: 10})
			},
			code: errdef.ExitInvalid, substr: []string{`"sha256:../../x"`},
		},
		{
			name: "a layer declared as a manifest",
			edit: func(t *testing.T, c *kittest.Contents) {
				d := c.Blob([]byte("layer bytes, not a manifest"), "")
				d.MediaType = ocispec.MediaTypeImageManifest
				addImage(t, c, repo+":layer", d)
			},
			code: errdef.ExitInvalid, substr: []string{"declared a manifest", "is not recorded as one"},
		},
		{
			name: "a manifest whose config is not in the kit",
			edit: func(t *testing.T, c *kittest.Contents) {
				b, _ := json.Marshal(ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
					Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.Digest("sha256:" + lower), Size: 2}, Layers: []ocispec.Descriptor{}})
				addImage(t, c, repo+":noconfig", c.Blob(b, ocispec.MediaTypeImageManifest))
			},
			code: errdef.ExitInvalid, substr: []string{"config sha256:" + lower, "not in the kit"},
		},
		{
			name: "an index declared as an image manifest",
			edit: func(t *testing.T, c *kittest.Contents) {
				b, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}})
				d := c.Blob(b, ocispec.MediaTypeImageIndex)
				d.MediaType = ocispec.MediaTypeImageManifest
				addImage(t, c, repo+":liar", d)
			},
			code: errdef.ExitInvalid, substr: []string{"is recorded as " + ocispec.MediaTypeImageIndex},
		},
		{
			name: "a tag that is no image of images[]",
			edit: func(t *testing.T, c *kittest.Contents) {
				idx := c.Index(t)
				d := c.Image(t, unsigned)
				d.Annotations = map[string]string{ocispec.AnnotationRefName: repo + ":sha256-" + lower + ".sig"}
				idx.Manifests = append(idx.Manifests, d)
				c.SetIndex(t, idx)
			},
			code: errdef.ExitInvalid, substr: []string{repo + ":sha256-" + lower + ".sig", "nor a cosign tag or referrer"},
		},
		// 4. verify refuses what install would.
		{
			name:   "images/index.json is not JSON",
			edit:   func(t *testing.T, c *kittest.Contents) { c.Files["images/index.json"] = []byte("not json\n") },
			code:   errdef.ExitInvalid,
			substr: []string{"images/index.json", "not an OCI image index"},
		},
		{
			name:   "images/notes.txt",
			edit:   func(t *testing.T, c *kittest.Contents) { c.Files["images/notes.txt"] = []byte("hello\n") },
			code:   errdef.ExitInvalid,
			substr: []string{`"images/notes.txt"`},
		},
		{
			name:   "a blob stored under the wrong digest",
			edit:   func(t *testing.T, c *kittest.Contents) { c.Files["images/blobs/sha256/"+lower] = []byte("not ab...ab") },
			code:   errdef.ExitInvalid,
			substr: []string{`"images/blobs/sha256/` + lower + `"`},
		},
		{
			name: "an upper-case blob name",
			edit: func(t *testing.T, c *kittest.Contents) {
				d := c.Blob([]byte("shouting"), "")
				hexd := strings.TrimPrefix(string(d.Digest), "sha256:")
				c.Files["images/blobs/sha256/"+strings.ToUpper(hexd)] = c.Files["images/blobs/sha256/"+hexd]
				delete(c.Files, "images/blobs/sha256/"+hexd)
			},
			code: errdef.ExitInvalid, substr: []string{"images/blobs/sha256/"},
		},
		{
			name: "a sha512 blob",
			edit: func(t *testing.T, c *kittest.Contents) {
				c.Files["images/blobs/sha512/"+lower+lower] = []byte("sha512")
			},
			code: errdef.ExitInvalid, substr: []string{`"images/blobs/sha512/` + lower + lower + `"`},
		},
		{
			name: "images/index.json over the limit",
			edit: func(t *testing.T, c *kittest.Contents) {
				b := c.Files["images/index.json"]
				c.Files["images/index.json"] = append(b, bytes.Repeat([]byte(" "), verify.MaxImageIndex+1-len(b))...)
			},
			code: errdef.ExitInvalid, substr: []string{"images/index.json", "over the limit"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := kittest.Rewrite(t, base.Path, kitKey, func(k *kittest.Contents) { c.edit(t, k) })
			o := opts(kitKey)
			if c.imageKeys {
				o.ImageKeys = []*sign.PublicKey{imageKey.Public}
			}
			_, err := verify.File(ctx, p, o)
			for _, s := range c.substr {
				wantCode(t, err, c.code, s)
			}
		})
	}
}

var specsV2 = specs.Versioned{SchemaVersion: 2}
