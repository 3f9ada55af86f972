package site

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/manifest"
)

// activeKit is one kit active in a generation: its manifest and, when it
// ships images, its images/index.json.
type activeKit struct {
	name     string
	manifest *manifest.Manifest
	digest   string
	index    []byte
}

// inTree reports whether an entry is materialised in the generation tree:
// every entry not under images/, whatever role the manifest gives it.
func inTree(p string) bool { return !strings.HasPrefix(p, "images/") }

// folder makes the key two paths collide on: Unicode case folding of the
// NFD form, then NFC, so that "A"/"a", "ſ"/"s" and NFC/NFD spellings of
// one name are one path.
type folder struct{ c cases.Caser }

func newFolder() *folder { return &folder{c: cases.Fold()} }

func (f *folder) key(p string) string { return norm.NFC.String(f.c.String(norm.NFD.String(p))) }

// claim is a path or tag one active kit owns.
type claim struct {
	kit, path string
	sha256    string
	size      int64
}

// checkPaths refuses a kit (errdef.ErrInvalid, naming both kits and the
// path) that would share any path of the generation tree with another
// active kit: the same path, equal under case folding or normalisation, or a
// file of one kit that the other uses as a folder, either way. Roles are not
// trusted: every entry outside images/ is compared. Names under the site's
// own metadata folder (.offkit/) are refused too.
func checkPaths(m *manifest.Manifest, others []*activeKit) error {
	f := newFolder()
	files := map[string]claim{} // folded file path -> owner
	dirs := map[string]claim{}  // folded folder -> a file under it
	for _, o := range others {
		if o.name == m.Name {
			continue
		}
		for _, e := range o.manifest.Entries {
			if !inTree(e.Path) || e.Path == debugstore.ManifestPath {
				continue // the debug manifest is kept with the kit's metadata
			}
			k := f.key(e.Path)
			files[k] = claim{o.name, e.Path, e.SHA256, e.Size}
			for d := path.Dir(k); d != "." && d != "/"; d = path.Dir(d) {
				if _, ok := dirs[d]; ok {
					break
				}
				dirs[d] = claim{kit: o.name, path: e.Path}
			}
		}
	}
	reserved := f.key(metaDir)
	for _, e := range m.Entries {
		if !inTree(e.Path) {
			continue
		}
		k := f.key(e.Path)
		if first, _, _ := strings.Cut(k, "/"); first == reserved {
			return fmt.Errorf("kit %s: entry %q: %s/ is reserved for the site: %w", m.Name, e.Path, metaDir, errdef.ErrInvalid)
		}
		if e.Path == debugstore.ManifestPath {
			continue
		}
		if c, ok := files[k]; ok {
			if shared, err := checkSharedDebug(m, e, c); shared {
				if err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("kit %s: entry %q: already installed by kit %s as %q: %w", m.Name, e.Path, c.kit, c.path, errdef.ErrInvalid)
		}
		if c, ok := dirs[k]; ok {
			return fmt.Errorf("kit %s: entry %q: already installed by kit %s as a folder (of %q): %w", m.Name, e.Path, c.kit, c.path, errdef.ErrInvalid)
		}
		for d := path.Dir(k); d != "." && d != "/"; d = path.Dir(d) {
			if c, ok := files[d]; ok {
				return fmt.Errorf("kit %s: entry %q: uses as a folder a file already installed by kit %s (%q): %w", m.Name, e.Path, c.kit, c.path, errdef.ErrInvalid)
			}
		}
	}
	return nil
}

// tagClaim is one repository:tag a kit's images are served under.
type tagClaim struct {
	ref    string // as the kit wrote it
	digest string
}

// servedTag maps an image reference to the repository:tag `offkit serve`
// answers it under with the default mapping (registry host dropped), which
// is the widest: two references that collide under any mapping that keeps
// more of the name collide under it too. A reference with no tag claims no
// tag (""); one that does not map is compared as written.
func servedTag(ref string) string {
	r, err := reponame.Mapping{}.Map(ref)
	if err != nil {
		return ref
	}
	if r.Tag == "" {
		return ""
	}
	return r.Repository + ":" + r.Tag
}

// tagsOf lists the tags a kit claims: its manifest's images[] references and
// the ref.name annotations of its image index (signature and attestation
// tags included). An index that does not parse is ErrInvalid.
func tagsOf(m *manifest.Manifest, index []byte) (map[string]tagClaim, error) {
	out := map[string]tagClaim{}
	add := func(ref, digest string) {
		if t := servedTag(ref); t != "" {
			if _, ok := out[t]; !ok {
				out[t] = tagClaim{ref: ref, digest: digest}
			}
		}
	}
	for _, img := range m.Images {
		add(img.Reference, img.Digest)
	}
	if index != nil {
		var idx ocispec.Index
		if err := json.Unmarshal(index, &idx); err != nil {
			return nil, fmt.Errorf("kit %s: images/index.json: %w: %w", m.Name, err, errdef.ErrInvalid)
		}
		for _, d := range idx.Manifests {
			if ref := d.Annotations[ocispec.AnnotationRefName]; ref != "" {
				add(ref, d.Digest.String())
			}
		}
	}
	return out, nil
}

// isCosignTag reports whether tag is a cosign signature or attestation tag
// (repo:sha256-<hex>.sig or .att): it names the content it signs, so two
// kits carrying the same signature of the same image agree on it.
func isCosignTag(tag string) bool {
	_, t, _ := strings.Cut(tag, ":")
	return strings.HasPrefix(t, "sha256-") && (strings.HasSuffix(t, ".sig") || strings.HasSuffix(t, ".att"))
}

// checkTags refuses a kit (errdef.ErrInvalid, naming both kits) that would
// serve an image under a repository:tag another active kit serves: which of
// the two a registry answers would be arbitrary. A cosign signature tag both
// kits carry with the same digest is the same signature, and allowed.
func checkTags(m *manifest.Manifest, index []byte, others []*activeKit) error {
	mine, err := tagsOf(m, index)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.name == m.Name {
			continue
		}
		theirs, err := tagsOf(o.manifest, o.index)
		if err != nil {
			// An installed index that no longer parses claims what its
			// manifest says.
			theirs, _ = tagsOf(o.manifest, nil)
		}
		tags := make([]string, 0, len(mine))
		for t := range mine {
			tags = append(tags, t)
		}
		sort.Strings(tags)
		for _, t := range tags {
			c, ok := theirs[t]
			if !ok || (isCosignTag(t) && c.digest == mine[t].digest) {
				continue
			}
			return fmt.Errorf("kit %s: image %q: tag %s is already served by kit %s (image %q): %w", m.Name, mine[t].ref, t, o.name, c.ref, errdef.ErrInvalid)
		}
	}
	return nil
}
