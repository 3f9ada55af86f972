package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/internal/verifyread"
)

// Limits on what a snapshot reads from the store.
const (
	// MaxDepth bounds the nesting of indexes: install's (ocilayout), so
	// what install accepts the registry loads.
	MaxDepth = ocilayout.MaxDepth
	// MaxKitReach bounds the work of loading one kit: the manifests its
	// images reach, counted once per repository they are served in, plus
	// the config and layer descriptors those manifests name. A kit over it
	// is isolated rather than left to delay every other kit's images.
	// It is install's bound (ocilayout.MaxReach, counted the same way).
	MaxKitReach = ocilayout.MaxReach
)

const dockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

// KitAnnotation names, on each descriptor of a generation's image index,
// the kit that carries the image (the site writes it when it merges the
// kits' indexes).
const KitAnnotation = ocilayout.KitAnnotation

func isIndex(mt string) bool {
	return mt == ocilayout.OCIIndex || mt == ocilayout.DockerList
}

func isManifest(mt string) bool {
	return mt == ocilayout.OCIManifest || mt == ocilayout.DockerManifest
}

// nondistributable reports whether a layer is one kits do not carry: its
// descriptor names the URLs it is fetched from.
func nondistributable(mt string) bool {
	return mt == dockerForeignLayer || strings.HasPrefix(mt, "application/vnd.oci.image.layer.nondistributable.")
}

// Installed is the optional ability of a Store (site.View) to tell when
// each kit active in the generation being served was installed. Without
// it, kits claiming one tag are decided by kit name.
type Installed interface {
	// KitsInstalled returns the generation being served, named as Images
	// names it, and the install time of each of its kits.
	KitsInstalled() (generation string, installed map[string]time.Time, err error)
}

// snapshot is what one generation serves: immutable once built, shared by
// every request that resolved to that generation.
type snapshot struct {
	generation string
	repos      map[string]*repository
	catalog    []string // sorted repository names
	// isolated are the kits none of whose images are served, in the
	// order the kits were considered.
	isolated []isolation
	// withheld are the tags a kit claims that a kit active before it
	// serves with another digest.
	withheld []withheld
	owners   map[string]string // "repository:tag" → the kit that serves it
}

// isolation is a kit whose images could not all be loaded.
type isolation struct {
	kit string
	err error
}

// withheld is a tag claim that is not served.
type withheld struct {
	kit, owner      string // the claiming kit, the kit that serves the tag
	repository, tag string
	digest          string // what kit claims
}

// problem reports the kits the snapshot does not serve in full, or nil.
func (s *snapshot) problem() error {
	var errs []error
	for _, i := range s.isolated {
		errs = append(errs, fmt.Errorf("kit %s isolated, none of its images is served: %w", kitName(i.kit), i.err))
	}
	for _, w := range s.withheld {
		errs = append(errs, fmt.Errorf("kit %s: tag %s:%s (%s) not served: kit %s, active first, serves it: %w",
			kitName(w.kit), w.repository, w.tag, w.digest, kitName(w.owner), errdef.ErrInvalid))
	}
	return errors.Join(errs...)
}

func kitName(k string) string {
	if k == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", k)
}

type repository struct {
	tags      map[string]ocispec.Descriptor
	tagList   []string // sorted
	manifests map[string]ocispec.Descriptor
	blobs     map[string]int64 // digest → size: configs, layers, and manifests
	referrers map[string][]ocispec.Descriptor
}

func newRepository() *repository {
	return &repository{tags: map[string]ocispec.Descriptor{}, manifests: map[string]ocispec.Descriptor{},
		blobs: map[string]int64{}, referrers: map[string][]ocispec.Descriptor{}}
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

// load builds the snapshot of one generation from its image index.
//
// The index's descriptors are grouped by kit (KitAnnotation) and the kits
// loaded one by one, in the order they became active. Every manifest a
// kit's descriptors reach is read once (bounded, its sha256 checked, its
// media type checked against its descriptor and its content) and every
// config and layer it names is checked to be in the store with its size.
// A kit that fails any of this is isolated: none of its images is served,
// the others are, and the snapshot records why. A tag a kit claims that
// a kit active before it already serves with another digest is withheld.
// Only an error reading the store (not a fault of any kit's content) fails
// the whole snapshot.
func load(store Store, mapping reponame.Mapping, log *slog.Logger) (*snapshot, error) {
	gen, raw, installed, err := readGeneration(store, log)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("image index of %s: %w: %w", gen, err, errdef.ErrInvalid)
	}
	groups := map[string][]ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		k := d.Annotations[KitAnnotation]
		groups[k] = append(groups[k], d)
	}
	s := &snapshot{generation: gen, repos: map[string]*repository{}, owners: map[string]string{}}
	l := &loader{store: store, log: log, docs: map[string]loadedDoc{}, blobs: map[string]int64{}}
	for _, k := range kitOrder(groups, installed) {
		repos, lost, err := l.kit(s, mapping, groups[k])
		if err != nil {
			if !kitFault(err) {
				return nil, fmt.Errorf("kit %s: %w", kitName(k), err)
			}
			log.Warn("kit isolated: none of its images is served", "kit", k, "generation", gen, "error", err)
			s.isolated = append(s.isolated, isolation{kit: k, err: err})
			continue
		}
		for _, w := range lost {
			w.kit = k
			log.Warn("tag claimed by two kits: the kit active first serves it", "repository", w.repository, "tag", w.tag,
				"served", w.owner, "withheld", k, "digest", w.digest)
			s.withheld = append(s.withheld, w)
		}
		s.merge(k, repos)
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

// readGeneration reads the generation being served: its image index and,
// when the store can tell, when each kit was installed, both of the same
// generation (generations are never changed once made, so the same name
// means the same content).
func readGeneration(store Store, log *slog.Logger) (gen string, index []byte, installed map[string]time.Time, err error) {
	is, ok := store.(Installed)
	for try := 0; ; try++ {
		gen, index, err = store.Images()
		if err != nil || !ok {
			return gen, index, nil, err
		}
		igen, installed, ierr := is.KitsInstalled()
		if ierr == nil && igen == gen {
			return gen, index, installed, nil
		}
		if ierr == nil && try < 3 {
			continue // the generation switched between the two reads
		}
		if ierr == nil {
			ierr = fmt.Errorf("the generation served keeps changing")
		}
		log.Warn("install order unknown: a tag claimed by two kits goes to the first kit by name", "generation", gen, "error", ierr)
		return gen, index, nil, nil
	}
}

// kitOrder orders the kits of an index as they became active: by install
// time, then by name; kits the state does not list come last, by name.
func kitOrder(groups map[string][]ocispec.Descriptor, installed map[string]time.Time) []string {
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ti, iok := installed[names[i]]
		tj, jok := installed[names[j]]
		if iok != jok {
			return iok
		}
		if iok && !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return names[i] < names[j]
	})
	return names
}

// kitFault reports whether err comes from a kit's content (what isolates
// the kit) rather than from reading the store.
func kitFault(err error) bool {
	return errors.Is(err, errdef.ErrInvalid) || errors.Is(err, errdef.ErrNotFound) ||
		errors.Is(err, errdef.ErrDigestMismatch) || errors.Is(err, fs.ErrNotExist)
}

// loader reads a generation's manifests and checks its blobs, each once.
type loader struct {
	store  Store
	log    *slog.Logger
	docs   map[string]loadedDoc // verified manifests by digest
	blobs  map[string]int64     // store blobs seen: digest → size on disk
	budget int                  // what the kit being loaded may still reach
}

// loadedDoc is a manifest read and verified, with its size.
type loadedDoc struct {
	doc  *document
	size int64
}

// spend takes n from the kit's budget (MaxKitReach).
func (l *loader) spend(n int) error {
	l.budget -= n
	if l.budget < 0 {
		return fmt.Errorf("the kit's images reach more than %d manifests and blobs: %w", MaxKitReach, errdef.ErrInvalid)
	}
	return nil
}

// kit loads the images of one kit into repositories of its own. A tag
// that s (the kits before it) serves with another digest is returned as
// withheld, and the image it names is not loaded for that claim.
func (l *loader) kit(s *snapshot, mapping reponame.Mapping, descs []ocispec.Descriptor) (map[string]*repository, []withheld, error) {
	repos := map[string]*repository{}
	var lost []withheld
	l.budget = MaxKitReach
	for _, d := range descs {
		refName := d.Annotations[ocispec.AnnotationRefName]
		if refName == "" {
			continue
		}
		dg := string(d.Digest)
		if !reponame.ValidDigest(dg) {
			return nil, nil, fmt.Errorf("image %q: digest %q: %w", refName, dg, errdef.ErrInvalid)
		}
		ref, err := mapping.Map(refName)
		if err != nil {
			return nil, nil, err
		}
		if ref.Digest != "" && ref.Digest != dg {
			return nil, nil, fmt.Errorf("image %q: its reference pins another digest than %s: %w", refName, dg, errdef.ErrInvalid)
		}
		if ref.Tag != "" {
			if owner := s.repos[ref.Repository]; owner != nil {
				if prev, ok := owner.tags[ref.Tag]; ok && prev.Digest != d.Digest {
					lost = append(lost, withheld{owner: s.owners[ref.Repository+":"+ref.Tag], repository: ref.Repository, tag: ref.Tag, digest: dg})
					continue
				}
			}
		}
		r := repos[ref.Repository]
		if r == nil {
			r = newRepository()
			repos[ref.Repository] = r
		}
		if err := l.walk(r, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, 0); err != nil {
			return nil, nil, fmt.Errorf("image %q: %w", refName, err)
		}
		if ref.Tag != "" {
			if prev, ok := r.tags[ref.Tag]; ok && prev.Digest != d.Digest {
				l.log.Warn("tag claimed twice by one kit; the first is served", "repository", ref.Repository, "tag", ref.Tag, "served", prev.Digest, "ignored", dg)
				continue
			}
			r.tags[ref.Tag] = r.manifests[dg]
		}
	}
	return repos, lost, nil
}

// merge adds the repositories of kit to s. What s has (from kits active
// before) is kept: a kit only adds.
func (s *snapshot) merge(kit string, repos map[string]*repository) {
	for name, kr := range repos {
		r := s.repos[name]
		if r == nil {
			r = newRepository()
			s.repos[name] = r
		}
		for dg, d := range kr.manifests {
			if _, ok := r.manifests[dg]; !ok {
				r.manifests[dg] = d
			}
		}
		for dg, n := range kr.blobs {
			if _, ok := r.blobs[dg]; !ok {
				r.blobs[dg] = n
			}
		}
		for subject, list := range kr.referrers {
		next:
			for _, d := range list {
				for _, have := range r.referrers[subject] {
					if have.Digest == d.Digest {
						continue next
					}
				}
				r.referrers[subject] = append(r.referrers[subject], d)
			}
		}
		for tag, d := range kr.tags {
			if _, ok := r.tags[tag]; !ok {
				r.tags[tag] = r.manifests[string(d.Digest)]
				s.owners[name+":"+tag] = kit
			}
		}
	}
}

// walk records desc and everything it reaches in r.
func (l *loader) walk(r *repository, desc ocispec.Descriptor, depth int) error {
	dg := string(desc.Digest)
	if _, ok := r.manifests[dg]; ok {
		return nil
	}
	if depth > MaxDepth {
		return fmt.Errorf("manifest %s: indexes nested deeper than %d: %w", dg, MaxDepth, errdef.ErrInvalid)
	}
	doc, err := l.document(desc)
	if err != nil {
		return err
	}
	if err := l.spend(1 + len(doc.Manifests) + len(doc.Layers)); err != nil {
		return err
	}
	if desc.MediaType == "" {
		desc.MediaType = doc.MediaType
	}
	switch {
	case doc.MediaType != "" && doc.MediaType != desc.MediaType:
		return fmt.Errorf("manifest %s: declared as %q, its content says %q: %w", dg, desc.MediaType, doc.MediaType, errdef.ErrInvalid)
	case isIndex(desc.MediaType):
		if doc.Config != nil || len(doc.Layers) > 0 {
			return fmt.Errorf("manifest %s: an index (%s) with a config or layers: %w", dg, desc.MediaType, errdef.ErrInvalid)
		}
	case isManifest(desc.MediaType):
		if doc.Config == nil || len(doc.Manifests) > 0 {
			return fmt.Errorf("manifest %s: an image manifest (%s) without a config: %w", dg, desc.MediaType, errdef.ErrInvalid)
		}
	default:
		return fmt.Errorf("manifest %s: media type %q is not an image manifest or index: %w", dg, desc.MediaType, errdef.ErrInvalid)
	}
	r.manifests[dg] = desc
	r.blobs[dg] = desc.Size
	if doc.Subject != nil && reponame.ValidDigest(string(doc.Subject.Digest)) {
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
			if err := l.walk(r, ocispec.Descriptor{MediaType: c.MediaType, Digest: c.Digest, Size: c.Size}, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	blobs := append([]ocispec.Descriptor{*doc.Config}, doc.Layers...)
	for _, b := range blobs {
		bd := string(b.Digest)
		if nondistributable(b.MediaType) {
			// Not carried: served only if the store happens to hold it.
			if reponame.ValidDigest(bd) && l.checkBlob(b) == nil {
				r.blobs[bd] = b.Size
			}
			continue
		}
		if !reponame.ValidDigest(bd) {
			return fmt.Errorf("manifest %s: blob digest %q: %w", dg, bd, errdef.ErrInvalid)
		}
		if err := l.checkBlob(b); err != nil {
			return fmt.Errorf("manifest %s: %w", dg, err)
		}
		r.blobs[bd] = b.Size
	}
	return nil
}

// document reads desc from the store once per snapshot.
func (l *loader) document(desc ocispec.Descriptor) (*document, error) {
	dg := string(desc.Digest)
	if d, ok := l.docs[dg]; ok {
		if d.size != desc.Size {
			return nil, fmt.Errorf("manifest %s: %d bytes, descriptor says %d: %w", dg, d.size, desc.Size, errdef.ErrDigestMismatch)
		}
		return d.doc, nil
	}
	doc, err := readDocument(l.store, desc)
	if err != nil {
		return nil, err
	}
	l.docs[dg] = loadedDoc{doc, desc.Size}
	return doc, nil
}

// checkBlob checks that the store holds blob d (a config or layer) with
// its size. The digest must be valid.
func (l *loader) checkBlob(d ocispec.Descriptor) error {
	dg := string(d.Digest)
	n, ok := l.blobs[dg]
	if !ok {
		f, err := l.store.Blob(dg)
		if err != nil {
			return fmt.Errorf("blob %s: %w", dg, err)
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", dg, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("blob %s: not a regular file in the store: %w", dg, errdef.ErrInvalid)
		}
		n = st.Size()
		l.blobs[dg] = n
	}
	if n != d.Size {
		return fmt.Errorf("blob %s: %d bytes in the store, descriptor says %d: %w", dg, n, d.Size, errdef.ErrDigestMismatch)
	}
	return nil
}

func readDocument(store Store, desc ocispec.Descriptor) (*document, error) {
	dg := string(desc.Digest)
	if !reponame.ValidDigest(dg) {
		return nil, fmt.Errorf("manifest digest %q: %w", dg, errdef.ErrInvalid)
	}
	if desc.Size < 0 || desc.Size > ocilayout.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: size %d, over %d: %w", dg, desc.Size, ocilayout.MaxManifestSize, errdef.ErrInvalid)
	}
	f, err := store.Blob(dg)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dg, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dg, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("manifest %s: not a regular file in the store: %w", dg, errdef.ErrInvalid)
	}
	b, err := verifyread.ReadAll(f, "manifest "+dg+" in the store", desc.Size, dg, ocilayout.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", dg, err, errdef.ErrInvalid)
	}
	return &doc, nil
}
