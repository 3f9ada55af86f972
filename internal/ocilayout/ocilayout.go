// Package ocilayout checks the images/ part of a kit: one OCI image layout
// that names exactly the images the kit manifest lists, and that nothing
// reading it (a site's registry, `offkit push`) can choke on. `verify`
// applies it to every kit it streams, and `offkit build` to every kit before
// it writes one, so that a builder never makes a kit a site would refuse.
//
// The rules, each failing with errdef.ErrInvalid naming the path, reference
// or digest at fault:
//
//  1. Under images/ there are only images/oci-layout (at most MaxMarkerSize
//     bytes, {"imageLayoutVersion": "1.0.0"}), images/index.json (at most
//     MaxIndexSize bytes) and blobs images/blobs/sha256/<hex>, hex being 64
//     lowercase hex digits equal to the entry's sha256. A kit with images[]
//     or any images/ entry has both oci-layout and index.json.
//  2. A blob that is a manifest or an index has its media type in its entry
//     (manifest.Entry.MediaType): one of the four manifest types below. Each
//     is at most MaxManifestSize bytes, all of them together at most
//     MaxManifestBytes. Every other blob has no media type.
//  3. index.json is an OCI image index (schemaVersion 2). Each of its
//     descriptors carries an org.opencontainers.image.ref.name that maps to
//     a repository name as `offkit serve` maps it (internal/reponame, with
//     and without the registry host), and each ref.name appears once (one
//     digest per reference), as does each repository:tag it is served as
//     with the host dropped. It is one of:
//     - an image of the manifest's images[]: the same reference, digest and
//     media type; every images[] reference appears, and a reference pinned
//     by digest (repo@sha256:...) pins that digest;
//     - a cosign tag <repository>:sha256-<hex>.sig or .att of an image of
//     images[]: the repository is the image's (its reference less tag and
//     digest) and sha256:<hex> is the image's digest or that of a child of
//     its index; a .sig manifest is one of the image's images[].signatures,
//     and each of those signatures is in index.json;
//     - an OCI referrer <repository>@<digest> of an image of images[]: the
//     digest is the descriptor's, the repository the image's, and the
//     manifest's subject is the image or a child of its index.
//  4. Everything index.json reaches is in the kit, with a descriptor that
//     tells the truth: every digest is sha256:<64 lowercase hex>, every size
//     the blob's size; a descriptor that names a manifest or index has one
//     of the four manifest media types, its blob's entry records that media
//     type, and its bytes parse as that: schemaVersion 2, a mediaType field
//     (when present) equal to the descriptor's, an index with "manifests" and
//     neither config nor layers, an image manifest with a config, "layers"
//     and no "manifests". Every config and layer is a blob of the kit (but
//     foreign and non-distributable layers, which are fetched from their
//     URLs); a subject is a manifest of the kit. Indexes nest at most
//     MaxDepth deep below index.json, on every path, and what a registry
//     walks to serve the layout, repository by repository, is at most
//     MaxReach manifests and blobs.
package ocilayout

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/manifest"
)

// Limits of the images/ part of a kit.
const (
	// MaxIndexSize bounds images/index.json.
	MaxIndexSize = 16 << 20
	// MaxManifestSize bounds one manifest or index blob.
	MaxManifestSize = 4 << 20
	// MaxManifestBytes bounds the manifest and index blobs of a kit together.
	MaxManifestBytes = 64 << 20
	// MaxDepth bounds the nesting of indexes below index.json (as the
	// registry of `offkit serve` does).
	MaxDepth = 8
	// MaxMarkerSize bounds images/oci-layout.
	MaxMarkerSize = 4 << 10
	// MaxReach bounds what a registry loading the layout reaches: for each
	// repository, each manifest it serves counted once, as 1 + its
	// manifests + its layers (the registry of `offkit serve` isolates a kit
	// past that).
	MaxReach = 1 << 20
)

// Paths of the layout inside a kit: the manifest's, which gives these
// paths their role.
const (
	IndexPath  = manifest.ImageIndexPath
	MarkerPath = manifest.ImageLayoutPath
	BlobDir    = manifest.ImageBlobDir
	dir        = "images/"
)

// The manifest media types a kit may carry.
const (
	OCIIndex       = "application/vnd.oci.image.index.v1+json"
	OCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	DockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// KitAnnotation names, on each descriptor of a site generation's image
// index, the kit that carries the image: the site writes it when it merges
// the kits' indexes, the registry of `offkit serve` reads it.
const KitAnnotation = "dev.offkit.kit"

// IsManifestType reports whether mt is one of the manifest or index media
// types a kit may carry.
func IsManifestType(mt string) bool {
	switch mt {
	case OCIIndex, OCIManifest, DockerList, DockerManifest:
		return true
	}
	return false
}

func isIndexType(mt string) bool { return mt == OCIIndex || mt == DockerList }

// distributable reports whether a layer of this media type must be carried:
// foreign and non-distributable layers are left to their URLs.
func distributable(mt string) bool {
	switch mt {
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return false
	}
	return true
}

// validHex reports whether h is 64 lowercase hex digits, a sha256 digest's.
func validHex(h string) bool { return reponame.ValidDigest("sha256:" + h) }

// Repository returns the repository of an image reference: the reference
// less its ":tag" and "@digest". Cosign tags and referrers of an image are
// named with it in index.json ("<repository>:sha256-<hex>.sig",
// "<repository>@<digest>").
func Repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// Layout is the images/ part of one kit, as its manifest lists it. Add gives
// it the bytes of the entries it Wants; Check then checks the layout.
type Layout struct {
	m     *manifest.Manifest
	blobs map[string]manifest.Entry // shipped blobs by digest
	kept  map[string][]byte         // wanted entries by path; nil until added
	has   bool                      // the kit has images
}

// New checks what the kit manifest m says of the images/ part (rules 1, 2,
// and the images[] side of 3) and returns the layout to fill.
func New(m *manifest.Manifest) (*Layout, error) {
	l := &Layout{m: m, blobs: map[string]manifest.Entry{}, kept: map[string][]byte{}, has: len(m.Images) > 0}
	var total int64
	for _, e := range m.Entries {
		if !strings.HasPrefix(e.Path, dir) {
			continue
		}
		l.has = true
		if e.InBase {
			return nil, fmt.Errorf("entry %q: image layout files must be shipped in the kit: %w", e.Path, errdef.ErrInvalid)
		}
		switch e.Path {
		case IndexPath:
			if e.MediaType != "" && e.MediaType != OCIIndex {
				return nil, fmt.Errorf("entry %q: media type %q, want %s: %w", e.Path, e.MediaType, OCIIndex, errdef.ErrInvalid)
			}
			if e.Size > MaxIndexSize {
				return nil, fmt.Errorf("entry %q: %d bytes, over the limit of %d: %w", e.Path, e.Size, MaxIndexSize, errdef.ErrInvalid)
			}
			l.kept[e.Path] = nil
			continue
		case MarkerPath:
			if e.MediaType != "" {
				return nil, fmt.Errorf("entry %q: media type %q, want none: %w", e.Path, e.MediaType, errdef.ErrInvalid)
			}
			if e.Size > MaxMarkerSize {
				return nil, fmt.Errorf("entry %q: %d bytes, over the limit of %d: %w", e.Path, e.Size, MaxMarkerSize, errdef.ErrInvalid)
			}
			l.kept[e.Path] = nil
			continue
		}
		hex, ok := strings.CutPrefix(e.Path, BlobDir)
		if !ok {
			return nil, fmt.Errorf("entry %q: not a file of an OCI image layout (under images/ only oci-layout, index.json and blobs/sha256/<hex>): %w", e.Path, errdef.ErrInvalid)
		}
		if !validHex(hex) || hex != e.SHA256 {
			return nil, fmt.Errorf("entry %q: not a blob named by its sha256 (images/blobs/sha256/<64 lowercase hex>, the entry's sha256 %s): %w", e.Path, e.SHA256, errdef.ErrInvalid)
		}
		l.blobs["sha256:"+hex] = e
		if e.MediaType == "" {
			continue
		}
		if !IsManifestType(e.MediaType) {
			return nil, fmt.Errorf("entry %q: media type %q is not a manifest or index type (a blob records only those): %w", e.Path, e.MediaType, errdef.ErrInvalid)
		}
		if e.Size > MaxManifestSize || total+e.Size > MaxManifestBytes {
			return nil, fmt.Errorf("entry %q: manifest of %d bytes, over the limit of %d (%d for all manifests of a kit): %w", e.Path, e.Size, MaxManifestSize, MaxManifestBytes, errdef.ErrInvalid)
		}
		total += e.Size
		l.kept[e.Path] = nil
	}
	if !l.has {
		return l, nil
	}
	for _, p := range []string{IndexPath, MarkerPath} {
		if _, ok := l.kept[p]; !ok {
			return nil, fmt.Errorf("entry %q: missing, and the kit has images: %w", p, errdef.ErrInvalid)
		}
	}
	refs := map[string]int{}
	for i, im := range m.Images {
		if j, ok := refs[im.Reference]; ok {
			return nil, fmt.Errorf("manifest images[%d]: reference %q is also images[%d]'s: %w", i, im.Reference, j, errdef.ErrInvalid)
		}
		refs[im.Reference] = i
		if !reponame.ValidDigest(im.Digest) {
			return nil, fmt.Errorf("manifest images[%d] %q: digest %q is not a sha256 digest: %w", i, im.Reference, im.Digest, errdef.ErrInvalid)
		}
		if _, pin, ok := strings.Cut(im.Reference, "@"); ok && pin != im.Digest {
			return nil, fmt.Errorf("manifest images[%d] %q: the reference pins another digest than %s: %w", i, im.Reference, im.Digest, errdef.ErrInvalid)
		}
	}
	return l, nil
}

// Wants reports whether Check needs the bytes of the entry at path.
func (l *Layout) Wants(path string) bool {
	_, ok := l.kept[path]
	return ok
}

// Add gives the checked bytes of a wanted entry.
func (l *Layout) Add(path string, b []byte) {
	if l.Wants(path) {
		l.kept[path] = b
	}
}

// descriptor is an OCI content descriptor, as far as the rules read it.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// document is a manifest or an index, as far as the rules read it.
type document struct {
	SchemaVersion int           `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	Config        *descriptor   `json:"config"`
	Layers        *[]descriptor `json:"layers"`
	Manifests     *[]descriptor `json:"manifests"`
	Subject       *descriptor   `json:"subject"`
}

// node is a checked manifest or index.
type node struct {
	height   int      // how deep indexes nest below it
	children []string // digests of an index's manifests
	subject  string
	reach    int // what the registry counts for it: 1 + manifests + layers
}

// Check checks the layout (rules 3 and 4) once every wanted entry has been
// added, and returns the bytes of index.json: nil for a kit without images.
func (l *Layout) Check() ([]byte, error) {
	if !l.has {
		return nil, nil
	}
	for p, b := range l.kept {
		if b == nil {
			return nil, fmt.Errorf("entry %q: content not seen: %w", p, errdef.ErrInvalid)
		}
	}
	var marker struct {
		Version *string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(l.kept[MarkerPath], &marker); err != nil || marker.Version == nil || *marker.Version != "1.0.0" {
		return nil, fmt.Errorf("entry %q: not an OCI layout marker {\"imageLayoutVersion\": \"1.0.0\"}: %w", MarkerPath, errdef.ErrInvalid)
	}
	raw := l.kept[IndexPath]
	var idx document
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("entry %q: not an OCI image index: %w: %w", IndexPath, err, errdef.ErrInvalid)
	}
	if idx.SchemaVersion != 2 || (idx.MediaType != "" && idx.MediaType != OCIIndex) || idx.Manifests == nil || idx.Config != nil || idx.Layers != nil {
		return nil, fmt.Errorf("entry %q: not an OCI image index (schemaVersion 2, mediaType %s, manifests): %w", IndexPath, OCIIndex, errdef.ErrInvalid)
	}
	w := &walker{l: l, nodes: map[string]*node{}}
	for i, d := range *idx.Manifests {
		at := fmt.Sprintf("%s: manifests[%d] (%q)", IndexPath, i, d.Annotations[refNameAnnotation])
		if _, err := w.manifest(at, d, 0); err != nil {
			return nil, err
		}
	}
	if err := l.match(*idx.Manifests, w); err != nil {
		return nil, err
	}
	return raw, nil
}

// match checks that the descriptors of index.json are the images of
// images[], their cosign tags and their referrers, each once (rule 3).
func (l *Layout) match(ds []descriptor, w *walker) error {
	byRef := map[string]int{}
	// The images[] a cosign tag or referrer may be attached to, in order, by
	// repository + " " + the digest of the image or of a child of its index.
	onto := map[string][]manifest.Image{}
	for i, im := range l.m.Images {
		byRef[im.Reference] = i
		repo := Repository(im.Reference)
		onto[repo+" "+im.Digest] = append(onto[repo+" "+im.Digest], im)
		if n := w.nodes[im.Digest]; n != nil {
			for _, c := range n.children {
				onto[repo+" "+c] = append(onto[repo+" "+c], im)
			}
		}
	}
	seen := map[string]bool{}
	sigs := map[string]bool{}      // repository + " " + signature digest
	tags := map[string]int{}       // served repository:tag → descriptor
	repos := map[string][]string{} // served repository → digests
	for i, d := range ds {
		ref := d.Annotations[refNameAnnotation]
		at := fmt.Sprintf("%s: manifests[%d]", IndexPath, i)
		if ref == "" {
			return fmt.Errorf("%s (%s): no %s annotation: %w", at, d.Digest, refNameAnnotation, errdef.ErrInvalid)
		}
		served, err := reponame.Mapping{}.Map(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		wide, err := reponame.Mapping{KeepHost: true}.Map(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if seen[ref] {
			return fmt.Errorf("%s: reference %q named twice (one digest per reference; the second is %s): %w", at, ref, d.Digest, errdef.ErrInvalid)
		}
		seen[ref] = true
		if served.Tag != "" {
			tag := served.Repository + ":" + served.Tag
			if prev, ok := tags[tag]; ok && ds[prev].Digest != d.Digest {
				return fmt.Errorf("%s: %q and %q are both served as %s, with digests %s and %s (one digest per reference): %w",
					at, ds[prev].Annotations[refNameAnnotation], ref, tag, ds[prev].Digest, d.Digest, errdef.ErrInvalid)
			}
			tags[tag] = i
		}
		repos[wide.Repository] = append(repos[wide.Repository], d.Digest)
		if j, ok := byRef[ref]; ok {
			im := l.m.Images[j]
			if d.Digest != im.Digest {
				return fmt.Errorf("%s: %q is %s, but the manifest's images[%d] says %s: %w", at, ref, d.Digest, j, im.Digest, errdef.ErrInvalid)
			}
			if im.MediaType != "" && d.MediaType != im.MediaType {
				return fmt.Errorf("%s: %q has media type %s, but the manifest's images[%d] says %s: %w", at, ref, d.MediaType, j, im.MediaType, errdef.ErrInvalid)
			}
			continue
		}
		ok, err := attached(ref, d, w, onto, sigs)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if !ok {
			return fmt.Errorf("%s: %q (%s) is neither an image of the manifest's images[] nor a cosign tag or referrer of one: %w", at, ref, d.Digest, errdef.ErrInvalid)
		}
	}
	if err := w.reach(repos); err != nil {
		return err
	}
	for j, im := range l.m.Images {
		if !seen[im.Reference] {
			return fmt.Errorf("manifest images[%d] %q: not in %s: %w", j, im.Reference, IndexPath, errdef.ErrInvalid)
		}
		for _, s := range im.Signatures {
			if !sigs[Repository(im.Reference)+" "+s] {
				return fmt.Errorf("manifest images[%d] %q: signature manifest %s is not in %s: %w", j, im.Reference, s, IndexPath, errdef.ErrInvalid)
			}
		}
	}
	return nil
}

// attached reports whether the descriptor d named ref is a cosign tag or a
// referrer of an image of images[] (onto, as match builds it), recording
// the .sig tags found in sigs.
func attached(ref string, d descriptor, w *walker, onto map[string][]manifest.Image, sigs map[string]bool) (bool, error) {
	if repo, dg, ok := strings.Cut(ref, "@"); ok {
		if dg != d.Digest {
			return false, fmt.Errorf("referrer %q is %s: %w", ref, d.Digest, errdef.ErrInvalid)
		}
		subject := w.nodes[d.Digest].subject
		return subject != "" && len(onto[repo+" "+subject]) > 0, nil
	}
	i := strings.LastIndexByte(ref, ':')
	if i < strings.LastIndexByte(ref, '/') {
		return false, nil
	}
	repo, tag := ref[:i], ref[i+1:]
	hex, ok := strings.CutPrefix(tag, "sha256-")
	if !ok {
		return false, nil
	}
	hex, sig := strings.CutSuffix(hex, ".sig")
	if !sig {
		if hex, ok = strings.CutSuffix(hex, ".att"); !ok {
			return false, nil
		}
	}
	if !validHex(hex) {
		return false, nil
	}
	for _, im := range onto[repo+" sha256:"+hex] {
		if !sig {
			return true, nil
		}
		for _, s := range im.Signatures {
			if s == d.Digest {
				sigs[repo+" "+s] = true
				return true, nil
			}
		}
	}
	return false, nil
}

// reach counts what a registry loading the layout reaches, as `offkit
// serve` does: each repository (with its registry host, the mapping that
// keeps names apart the most) walks the manifests it serves once, counting
// each as 1 + its manifests + its layers; at most MaxReach in all.
func (w *walker) reach(repos map[string][]string) error {
	total := 0
	for repo, roots := range repos {
		seen := map[string]bool{}
		stack := append([]string(nil), roots...)
		for len(stack) > 0 {
			dg := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[dg] {
				continue
			}
			seen[dg] = true
			n := w.nodes[dg]
			if total += n.reach; total > MaxReach {
				return fmt.Errorf("%s: the images reach more than %d manifests and blobs (repository %s and those before it): %w", IndexPath, MaxReach, repo, errdef.ErrInvalid)
			}
			stack = append(stack, n.children...)
		}
	}
	return nil
}

// walker checks each manifest and index reached from index.json once.
type walker struct {
	l     *Layout
	nodes map[string]*node
}

// blob returns the entry of a blob that a descriptor at names.
func (w *walker) blob(at string, d descriptor) (manifest.Entry, bool, error) {
	if !reponame.ValidDigest(d.Digest) {
		return manifest.Entry{}, false, fmt.Errorf("%s: digest %q: not a sha256 digest (sha256:<64 lowercase hex>): %w", at, d.Digest, errdef.ErrInvalid)
	}
	if d.Size < 0 {
		return manifest.Entry{}, false, fmt.Errorf("%s: %s: negative size %d: %w", at, d.Digest, d.Size, errdef.ErrInvalid)
	}
	e, ok := w.l.blobs[d.Digest]
	if ok && e.Size != d.Size {
		return manifest.Entry{}, false, fmt.Errorf("%s: %s: size %d, but %s has %d bytes: %w", at, d.Digest, d.Size, e.Path, e.Size, errdef.ErrInvalid)
	}
	return e, ok, nil
}

// manifest checks the manifest or index d, reached depth indexes below
// index.json, and everything it reaches.
func (w *walker) manifest(at string, d descriptor, depth int) (*node, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%s: %s: indexes nested deeper than %d: %w", at, d.Digest, MaxDepth, errdef.ErrInvalid)
	}
	e, ok, err := w.blob(at, d)
	if err != nil {
		return nil, err
	}
	if !IsManifestType(d.MediaType) {
		return nil, fmt.Errorf("%s: %s: media type %q is not a manifest or index type: %w", at, d.Digest, d.MediaType, errdef.ErrInvalid)
	}
	if !ok {
		return nil, fmt.Errorf("%s: manifest %s: not in the kit (no %s%s): %w", at, d.Digest, BlobDir, strings.TrimPrefix(d.Digest, "sha256:"), errdef.ErrInvalid)
	}
	if e.MediaType != d.MediaType {
		if e.MediaType == "" {
			return nil, fmt.Errorf("%s: %s is declared a manifest (%s), but %s is not recorded as one in the kit manifest: %w", at, d.Digest, d.MediaType, e.Path, errdef.ErrInvalid)
		}
		return nil, fmt.Errorf("%s: %s is declared %s, but %s is recorded as %s: %w", at, d.Digest, d.MediaType, e.Path, e.MediaType, errdef.ErrInvalid)
	}
	if n, ok := w.nodes[d.Digest]; ok {
		if depth+n.height > MaxDepth {
			return nil, fmt.Errorf("%s: %s: indexes nested deeper than %d: %w", at, d.Digest, MaxDepth, errdef.ErrInvalid)
		}
		return n, nil
	}
	at = "manifest " + d.Digest
	var doc document
	if err := json.Unmarshal(w.l.kept[e.Path], &doc); err != nil {
		return nil, fmt.Errorf("%s (%s): not a %s: %w: %w", at, e.Path, d.MediaType, err, errdef.ErrInvalid)
	}
	if doc.SchemaVersion != 2 || (doc.MediaType != "" && doc.MediaType != d.MediaType) {
		return nil, fmt.Errorf("%s (%s): schemaVersion %d, mediaType %q: not a %s: %w", at, e.Path, doc.SchemaVersion, doc.MediaType, d.MediaType, errdef.ErrInvalid)
	}
	n := &node{}
	if isIndexType(d.MediaType) {
		if doc.Manifests == nil || doc.Config != nil || doc.Layers != nil {
			return nil, fmt.Errorf("%s (%s): not a %s (manifests, and neither config nor layers): %w", at, e.Path, d.MediaType, errdef.ErrInvalid)
		}
		for i, c := range *doc.Manifests {
			cn, err := w.manifest(fmt.Sprintf("%s: manifests[%d]", at, i), c, depth+1)
			if err != nil {
				return nil, err
			}
			n.height = max(n.height, cn.height+1)
			n.children = append(n.children, c.Digest)
		}
		n.reach = 1 + len(*doc.Manifests)
	} else {
		if doc.Config == nil || doc.Layers == nil || doc.Manifests != nil {
			return nil, fmt.Errorf("%s (%s): not a %s (config and layers, no manifests): %w", at, e.Path, d.MediaType, errdef.ErrInvalid)
		}
		if _, ok, err := w.blob(at+": config", *doc.Config); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%s: config %s: not in the kit: %w", at, doc.Config.Digest, errdef.ErrInvalid)
		}
		n.reach = 1 + len(*doc.Layers)
		for i, c := range *doc.Layers {
			_, ok, err := w.blob(fmt.Sprintf("%s: layers[%d]", at, i), c)
			if err != nil {
				return nil, err
			}
			if !ok && distributable(c.MediaType) {
				return nil, fmt.Errorf("%s: layers[%d]: blob %s: not in the kit: %w", at, i, c.Digest, errdef.ErrInvalid)
			}
		}
	}
	if doc.Subject != nil {
		se, ok, err := w.blob(at+": subject", *doc.Subject)
		if err != nil {
			return nil, err
		}
		if !ok || se.MediaType == "" {
			return nil, fmt.Errorf("%s: subject %s: not a manifest of the kit: %w", at, doc.Subject.Digest, errdef.ErrInvalid)
		}
		n.subject = doc.Subject.Digest
	}
	w.nodes[d.Digest] = n
	return n, nil
}
