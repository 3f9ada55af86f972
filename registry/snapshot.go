package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
)

// Limits on what a snapshot reads from the store.
const (
	// MaxManifestSize bounds one manifest or index read from the store.
	MaxManifestSize = 4 << 20
	// MaxDepth bounds the nesting of indexes.
	MaxDepth = 8
)

// Media types of manifests this registry knows how to walk.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == dockerManifestList
}

// snapshot is what one generation serves: immutable once built, shared by
// every request that resolved to that generation.
type snapshot struct {
	generation string
	repos      map[string]*repository
	catalog    []string // sorted repository names
}

type repository struct {
	tags      map[string]ocispec.Descriptor
	tagList   []string // sorted
	manifests map[string]ocispec.Descriptor
	blobs     map[string]int64 // digest → size: configs, layers, and manifests
	referrers map[string][]ocispec.Descriptor
}

// document is the part of a manifest or index the snapshot reads.
type document struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// load builds the snapshot of one generation from its image index. Every
// manifest reachable from an annotated descriptor is read once (bounded,
// its sha256 checked) to learn the blobs and referrers of its repository.
func load(store Store, mapping reponame.Mapping, log *slog.Logger) (*snapshot, error) {
	gen, raw, err := store.Images()
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("image index of %s: %v: %w", gen, err, errdef.ErrInvalid)
	}
	s := &snapshot{generation: gen, repos: map[string]*repository{}}
	docs := map[string]*document{}
	for _, d := range idx.Manifests {
		refName := d.Annotations[ocispec.AnnotationRefName]
		if refName == "" {
			continue
		}
		ref, err := mapping.Map(refName)
		if err != nil {
			log.Warn("image not served", "ref", refName, "error", err)
			continue
		}
		r := s.repos[ref.Repository]
		if r == nil {
			r = &repository{tags: map[string]ocispec.Descriptor{}, manifests: map[string]ocispec.Descriptor{},
				blobs: map[string]int64{}, referrers: map[string][]ocispec.Descriptor{}}
			s.repos[ref.Repository] = r
		}
		desc := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		if ref.Digest != "" && ref.Digest != string(d.Digest) {
			log.Warn("image not served: its reference pins another digest", "ref", refName, "digest", d.Digest)
			continue
		}
		if err := r.walk(store, desc, docs, 0); err != nil {
			return nil, fmt.Errorf("image %s: %w", refName, err)
		}
		if ref.Tag != "" {
			if prev, ok := r.tags[ref.Tag]; ok && prev.Digest != desc.Digest {
				log.Warn("tag claimed twice; the first is served", "repository", ref.Repository, "tag", ref.Tag, "served", prev.Digest, "ignored", desc.Digest)
				continue
			}
			r.tags[ref.Tag] = r.manifests[string(desc.Digest)]
		}
	}
	for name, r := range s.repos {
		s.catalog = append(s.catalog, name)
		for t := range r.tags {
			r.tagList = append(r.tagList, t)
		}
		sort.Strings(r.tagList)
		for _, list := range r.referrers {
			sort.Slice(list, func(i, j int) bool { return list[i].Digest < list[j].Digest })
		}
	}
	sort.Strings(s.catalog)
	return s, nil
}

// walk records desc and everything it reaches in r.
func (r *repository) walk(store Store, desc ocispec.Descriptor, docs map[string]*document, depth int) error {
	dg := string(desc.Digest)
	if _, ok := r.manifests[dg]; ok {
		return nil
	}
	if depth > MaxDepth {
		return fmt.Errorf("manifest %s: indexes nested deeper than %d: %w", dg, MaxDepth, errdef.ErrInvalid)
	}
	doc, ok := docs[dg]
	if !ok {
		var err error
		if doc, err = readDocument(store, desc); err != nil {
			return err
		}
		docs[dg] = doc
	}
	if desc.MediaType == "" {
		desc.MediaType = doc.MediaType
	}
	if desc.MediaType == "" {
		return fmt.Errorf("manifest %s: no media type: %w", dg, errdef.ErrInvalid)
	}
	r.manifests[dg] = desc
	r.blobs[dg] = desc.Size
	if doc.Subject != nil {
		ref := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size,
			ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
		if ref.ArtifactType == "" && doc.Config != nil {
			ref.ArtifactType = doc.Config.MediaType
		}
		s := string(doc.Subject.Digest)
		r.referrers[s] = append(r.referrers[s], ref)
	}
	if isIndex(desc.MediaType) {
		for _, c := range doc.Manifests {
			if !reponame.ValidDigest(string(c.Digest)) {
				return fmt.Errorf("manifest %s: child digest %q: %w", dg, c.Digest, errdef.ErrInvalid)
			}
			if err := r.walk(store, ocispec.Descriptor{MediaType: c.MediaType, Digest: c.Digest, Size: c.Size}, docs, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	blobs := doc.Layers
	if doc.Config != nil {
		blobs = append([]ocispec.Descriptor{*doc.Config}, blobs...)
	}
	for _, b := range blobs {
		if !reponame.ValidDigest(string(b.Digest)) {
			// Foreign layers with other digests are not carried.
			continue
		}
		r.blobs[string(b.Digest)] = b.Size
	}
	return nil
}

func readDocument(store Store, desc ocispec.Descriptor) (*document, error) {
	dg := string(desc.Digest)
	if !reponame.ValidDigest(dg) {
		return nil, fmt.Errorf("manifest digest %q: %w", dg, errdef.ErrInvalid)
	}
	if desc.Size < 0 || desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: size %d, over %d: %w", dg, desc.Size, MaxManifestSize, errdef.ErrInvalid)
	}
	f, err := store.Blob(dg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dg, err)
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != desc.Size || "sha256:"+hex.EncodeToString(sum[:]) != dg {
		return nil, fmt.Errorf("manifest %s in the store: size or digest differs: %w", dg, errdef.ErrDigestMismatch)
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", dg, err, errdef.ErrInvalid)
	}
	return &doc, nil
}

// platformChild picks, for a client that cannot read an index, the child a
// distribution registry would give it: linux/amd64, else the only child.
func platformChild(store Store, r *repository, index ocispec.Descriptor, accepts func(string) bool) (ocispec.Descriptor, bool) {
	doc, err := readDocument(store, index)
	if err != nil {
		return ocispec.Descriptor{}, false
	}
	var pick []ocispec.Descriptor
	for _, c := range doc.Manifests {
		if !accepts(c.MediaType) {
			continue
		}
		if p := c.Platform; p != nil && p.OS == "linux" && p.Architecture == "amd64" {
			pick = append([]ocispec.Descriptor{c}, pick...)
		} else if p == nil || !strings.EqualFold(p.OS, "unknown") {
			pick = append(pick, c)
		}
	}
	if len(pick) == 0 || (len(pick) > 1 && (pick[0].Platform == nil || pick[0].Platform.Architecture != "amd64")) {
		return ocispec.Descriptor{}, false
	}
	d, ok := r.manifests[string(pick[0].Digest)]
	return d, ok
}
