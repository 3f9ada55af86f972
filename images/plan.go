package images

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/internal/verifyread"
	"github.com/offkit/offkit/manifest"
)

// maxDepth bounds the nesting of indexes (an index of indexes of ...).
const maxDepth = 8

// Annotations of buildx attestation manifests inside an index.
const (
	annotationRefType   = "vnd.docker.reference.type"
	annotationRefDigest = "vnd.docker.reference.digest"
	attestationManifest = "attestation-manifest"
)

// origin is where the bytes of one source come from.
type origin interface {
	// manifest returns the bytes of the manifest d (not yet checked).
	manifest(ctx context.Context, d v1.Descriptor) ([]byte, error)
	// blob opens the config or layer d (not yet checked).
	blob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
}

// rootManifest is the manifest a source points at, with its bytes.
type rootManifest struct {
	desc v1.Descriptor
	data []byte
}

// inlineBlob is a checked manifest or config, held in memory.
type inlineBlob struct {
	digest v1.Hash
	data   []byte
	// mediaType is the media type of a manifest or index; "" for any other
	// blob.
	mediaType string
}

// blobRef is a blob to stream from its origin.
type blobRef struct {
	desc   v1.Descriptor
	origin origin
	ref    string // the source's Ref, for messages
}

// entry is one descriptor of the layout's index.json.
type entry struct {
	refName string
	desc    v1.Descriptor
}

// sourcePlan is what one source contributes to the layout.
type sourcePlan struct {
	ref    string
	origin origin
	inline []inlineBlob
	blobs  []blobRef
	seen   map[v1.Hash]bool
	root   entry
	extras []entry
	image  manifest.Image
	// rootSig is the cosign signature manifest of the source digest, when
	// the source has one.
	rootSig *rootManifest
}

// stored describes the root manifest as written to the layout.
type stored struct {
	desc      v1.Descriptor
	platforms []string
	children  []v1.Hash // image children of an index, attestations excepted
}

// doc is any manifest or index, parsed only as far as needed to find what it
// references.
type doc struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Blobs     []v1.Descriptor `json:"blobs"`
	Manifests []v1.Descriptor `json:"manifests"`
}

func (d *doc) isIndex(mt types.MediaType) bool {
	return mt.IsIndex() || d.MediaType.IsIndex() || (d.Config == nil && d.Manifests != nil)
}

func parseDoc(ref string, d v1.Descriptor, b []byte) (*doc, error) {
	var m doc
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image %q: manifest %s: %w: %w", ref, d.Digest, err, errdef.ErrInvalid)
	}
	for _, c := range m.all() {
		if err := checkDigest(c.Digest); err != nil {
			return nil, fmt.Errorf("image %q: manifest %s: %w", ref, d.Digest, err)
		}
		if c.Size < 0 {
			return nil, fmt.Errorf("image %q: manifest %s: blob %s: negative size: %w", ref, d.Digest, c.Digest, errdef.ErrInvalid)
		}
	}
	return &m, nil
}

func (d *doc) all() []v1.Descriptor {
	var all []v1.Descriptor
	if d.Config != nil {
		all = append(all, *d.Config)
	}
	all = append(all, d.Layers...)
	all = append(all, d.Blobs...)
	return append(all, d.Manifests...)
}

// checkDigest accepts only sha256 digests in canonical form: they become
// file names.
func checkDigest(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q: not a sha256 digest: %w", h.String(), errdef.ErrInvalid)
	}
	return nil
}

// readSmall reads a manifest or config of at most ocilayout.MaxManifestSize bytes
// and checks it against d.
func readSmall(ref string, d v1.Descriptor, r io.Reader) ([]byte, error) {
	return verifyread.ReadAll(r, fmt.Sprintf("image %q: %s", ref, d.Digest), d.Size, d.Digest.String(), ocilayout.MaxManifestSize)
}

// addInline adds a checked blob held in memory; mediaType is that of a
// manifest or index, "" for a config or key.
func (p *sourcePlan) addInline(h v1.Hash, b []byte, mediaType string) {
	if p.seen == nil {
		p.seen = map[v1.Hash]bool{}
	}
	if p.seen[h] {
		if mediaType != "" {
			for i := range p.inline {
				if p.inline[i].digest == h && p.inline[i].mediaType == "" {
					p.inline[i].mediaType = mediaType
				}
			}
		}
		return
	}
	p.seen[h] = true
	p.inline = append(p.inline, inlineBlob{digest: h, data: b, mediaType: mediaType})
}

func (p *sourcePlan) addBlob(d v1.Descriptor) {
	if p.seen == nil {
		p.seen = map[v1.Hash]bool{}
	}
	if p.seen[d.Digest] || !distributable(d) {
		return
	}
	p.seen[d.Digest] = true
	p.blobs = append(p.blobs, blobRef{desc: d, origin: p.origin, ref: p.ref})
}

// distributable reports whether a layer may be copied: foreign and
// non-distributable layers are left to the URLs their descriptor names.
func distributable(d v1.Descriptor) bool {
	switch d.MediaType {
	case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return false
	}
	return true
}

// fetchManifest fetches and checks the manifest d.
func (p *sourcePlan) fetchManifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Size > ocilayout.MaxManifestSize {
		return nil, fmt.Errorf("image %q: manifest %s: %d bytes, over the %d limit: %w", p.ref, d.Digest, d.Size, ocilayout.MaxManifestSize, errdef.ErrInvalid)
	}
	b, err := p.origin.manifest(ctx, d)
	if err != nil {
		return nil, err
	}
	return readSmall(p.ref, d, bytes.NewReader(b))
}

// walk adds the manifest d (bytes b, or fetched when b is nil) and
// everything it references.
func (p *sourcePlan) walk(ctx context.Context, d v1.Descriptor, b []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("image %q: manifest %s: indexes nested over %d deep: %w", p.ref, d.Digest, maxDepth, errdef.ErrInvalid)
	}
	if b == nil {
		var err error
		if b, err = p.fetchManifest(ctx, d); err != nil {
			return err
		}
	}
	m, err := parseDoc(p.ref, d, b)
	if err != nil {
		return err
	}
	if d.MediaType == "" {
		d.MediaType = m.MediaType
	}
	p.addInline(d.Digest, b, string(d.MediaType))
	if m.isIndex(d.MediaType) {
		for _, c := range m.Manifests {
			if err := p.walk(ctx, c, nil, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if m.Config != nil {
		p.addBlob(*m.Config)
	}
	for _, l := range m.Layers {
		p.addBlob(l)
	}
	for _, l := range m.Blobs {
		p.addBlob(l)
	}
	return nil
}

// addRoot adds the root manifest of the source, filtered to the wanted
// platforms when there are some.
func (p *sourcePlan) addRoot(ctx context.Context, root rootManifest, wanted []v1.Platform) (*stored, error) {
	m, err := parseDoc(p.ref, root.desc, root.data)
	if err != nil {
		return nil, err
	}
	if root.desc.MediaType == "" {
		root.desc.MediaType = m.MediaType
	}
	if m.isIndex(root.desc.MediaType) {
		return p.addIndex(ctx, root, m, wanted)
	}
	if m.Config == nil {
		return nil, fmt.Errorf("image %q: manifest %s: no config: %w", p.ref, root.desc.Digest, errdef.ErrInvalid)
	}
	// The config of a single image is read now, for its platform.
	r, err := p.origin.blob(ctx, *m.Config)
	if err != nil {
		return nil, err
	}
	cb, err := readSmall(p.ref, *m.Config, r)
	r.Close()
	if err != nil {
		return nil, err
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(cb, &cfg); err != nil && m.Config.MediaType.IsConfig() {
		return nil, fmt.Errorf("image %q: config %s: %w: %w", p.ref, m.Config.Digest, err, errdef.ErrInvalid)
	}
	plat := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	for _, w := range wanted {
		if !platformMatch(w, &plat) {
			return nil, fmt.Errorf("image %q: platform %s: image is %s: %w", p.ref, formatPlatform(w), formatPlatform(plat), errdef.ErrNotFound)
		}
	}
	p.addInline(m.Config.Digest, cb, "")
	if err := p.walk(ctx, root.desc, root.data, 0); err != nil {
		return nil, err
	}
	s := &stored{desc: root.desc}
	if known(&plat) {
		s.platforms = []string{formatPlatform(plat)}
	}
	return s, nil
}

func (p *sourcePlan) addIndex(ctx context.Context, root rootManifest, m *doc, wanted []v1.Platform) (*stored, error) {
	desc, data := root.desc, root.data
	kept := m.Manifests
	if len(wanted) > 0 {
		var keep []int
		digests := map[string]bool{}
		for _, w := range wanted {
			found := false
			for i, c := range m.Manifests {
				if c.Platform != nil && platformMatch(w, c.Platform) && c.Annotations[annotationRefType] != attestationManifest {
					found = true
					if !slices.Contains(keep, i) {
						keep = append(keep, i)
						digests[c.Digest.String()] = true
					}
				}
			}
			if !found {
				return nil, fmt.Errorf("image %q: platform %s: not in index %s: %w", p.ref, formatPlatform(w), root.desc.Digest, errdef.ErrNotFound)
			}
		}
		for i, c := range m.Manifests {
			if c.Annotations[annotationRefType] == attestationManifest && digests[c.Annotations[annotationRefDigest]] {
				keep = append(keep, i)
			}
		}
		slices.Sort(keep)
		if len(keep) < len(m.Manifests) {
			var err error
			if data, err = filterIndex(root.data, keep); err != nil {
				return nil, fmt.Errorf("image %q: index %s: %w: %w", p.ref, root.desc.Digest, err, errdef.ErrInvalid)
			}
			h, n, err := v1.SHA256(bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			desc = v1.Descriptor{MediaType: root.desc.MediaType, Size: n, Digest: h}
			kept = nil
			for _, i := range keep {
				kept = append(kept, m.Manifests[i])
			}
		}
	}
	p.addInline(desc.Digest, data, string(desc.MediaType))
	s := &stored{desc: desc}
	for _, c := range kept {
		if err := p.walk(ctx, c, nil, 1); err != nil {
			return nil, err
		}
		if c.Annotations[annotationRefType] == attestationManifest {
			continue
		}
		if c.MediaType.IsImage() {
			s.children = append(s.children, c.Digest)
		}
		if known(c.Platform) {
			s.platforms = append(s.platforms, formatPlatform(*c.Platform))
		}
	}
	slices.Sort(s.platforms)
	s.platforms = slices.Compact(s.platforms)
	return s, nil
}

// filterIndex rewrites an index keeping only the children at positions
// keep, every other field as it was. The output is compact JSON with sorted
// keys, so the same input gives the same bytes.
func filterIndex(b []byte, keep []int) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	var children []json.RawMessage
	if err := json.Unmarshal(top["manifests"], &children); err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(keep))
	for _, i := range keep {
		out = append(out, children[i])
	}
	mb, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	top["manifests"] = mb
	return json.Marshal(top)
}

// parsePlatforms parses ImageSource.Platforms.
func parsePlatforms(ref string, ps []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ps {
		p, err := v1.ParsePlatform(s)
		if err != nil || p.OS == "" || p.Architecture == "" || p.OSVersion != "" {
			return nil, fmt.Errorf("image %q: platform %q: want os/arch[/variant]: %w", ref, s, errdef.ErrInvalid)
		}
		out = append(out, *p)
	}
	return out, nil
}

// platformMatch reports whether have is the wanted platform. An empty
// wanted variant matches any variant; arm64 has variant v8 by default.
func platformMatch(want v1.Platform, have *v1.Platform) bool {
	if have == nil || want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normVariant(want) == normVariant(*have)
}

func normVariant(p v1.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "" {
		return "v8"
	}
	return p.Variant
}

func known(p *v1.Platform) bool {
	return p != nil && p.OS != "" && p.Architecture != "" && p.OS != "unknown" && p.Architecture != "unknown"
}

// formatPlatform gives "os/arch[/variant]".
func formatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
