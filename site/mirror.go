package site

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// DefaultKeepExports is how many exports of each kind (concelier,
// excititor) a site keeps when InstallOptions.KeepExports is zero: the
// newest two, so that the export a kit's new version replaced stays
// installed beside it.
const DefaultKeepExports = 2

// exportKey names an export for conflicts: exportIds equal under ASCII case
// folding are one export (they would be one folder on a case-insensitive
// file system).
func exportKey(kind, id string) string { return kind + "/" + strings.ToLower(id) }

// kitExports lists the feed-mirror exports kit m carries: its entries under
// mirror/, grouped by mirror/<kind>/<exportId>/, each with its files (size
// and sha256 from the manifest) and the domains, created and generatedAt of
// its mirror[] record (without one, the domain folders its files are in).
//
// With strict (the kit being installed), every entry under mirror/ must
// have the layout mirror.SplitSitePath checks, every mirror[] record must
// name a kind and safe exportId whose files the kit carries, once, and no
// two exportIds may be equal under case folding: otherwise ErrInvalid naming
// the kit and the entry. Without strict (kits installed before these rules),
// entries without the layout are not exports and are skipped.
func kitExports(m *manifest.Manifest, strict bool) ([]mirror.SiteExport, error) {
	byKey := map[string]*mirror.SiteExport{}
	var order []string
	for _, e := range m.Entries {
		if !strings.HasPrefix(e.Path, "mirror/") {
			continue
		}
		kind, id, err := mirror.SplitSitePath(e.Path)
		if err != nil {
			if strict {
				return nil, fmt.Errorf("kit %s: entry %w", m.Name, err)
			}
			continue
		}
		k := exportKey(kind, id)
		x, ok := byKey[k]
		if !ok {
			x = &mirror.SiteExport{Kind: kind, ExportID: id, Kit: m.Name, KitVersion: m.Version}
			byKey[k] = x
			order = append(order, k)
		} else if x.ExportID != id {
			if strict {
				return nil, fmt.Errorf("kit %s: entry %q: exportId %q and %q differ only in case: %w", m.Name, e.Path, x.ExportID, id, errdef.ErrInvalid)
			}
			continue
		}
		x.Files = append(x.Files, mirror.SiteFile{Path: e.Path, Size: e.Size, SHA256: e.SHA256})
	}
	recorded := map[string]bool{}
	for i, r := range m.Mirror {
		x := byKey[exportKey(r.Kind, r.ExportID)]
		switch {
		case x == nil || x.ExportID != r.ExportID:
			if strict {
				return nil, fmt.Errorf("kit %s: mirror[%d] (%s %q): the kit has no files under mirror/%s/%s/mirror/: %w", m.Name, i, r.Kind, r.ExportID, r.Kind, r.ExportID, errdef.ErrInvalid)
			}
			continue
		case recorded[exportKey(r.Kind, r.ExportID)]:
			if strict {
				return nil, fmt.Errorf("kit %s: mirror[%d] (%s %q): recorded twice: %w", m.Name, i, r.Kind, r.ExportID, errdef.ErrInvalid)
			}
			continue
		}
		recorded[exportKey(r.Kind, r.ExportID)] = true
		x.Domains = append([]string{}, r.Domains...)
		sigs := map[string]*mirror.SiteSignature{}
		for _, f := range r.Files {
			if f.Signature != nil {
				sigs[f.Path] = &mirror.SiteSignature{Path: f.Signature.Path, Kind: f.Signature.Kind, KeyID: f.Signature.KeyID, Alg: f.Signature.Alg}
			}
		}
		for j := range x.Files {
			x.Files[j].Signature = sigs[x.Files[j].Path]
		}
		if r.Created != nil {
			x.Created = r.Created.UTC().Format(time.RFC3339)
		}
		if r.GeneratedAt != nil {
			x.GeneratedAt = r.GeneratedAt.UTC().Format(time.RFC3339)
		}
	}
	out := make([]mirror.SiteExport, 0, len(order))
	for _, k := range order {
		x := byKey[k]
		if len(x.Domains) == 0 {
			x.Domains = x.FileDomains()
		}
		out = append(out, *x)
	}
	return out, nil
}

// checkMirror refuses (ErrInvalid) a kit whose mirror entries break the
// export layout (kitExports, strict) or that carries an export another
// active kit carries: the same kind and exportId (also when equal under case
// folding), which would be one folder with two owners.
func checkMirror(m *manifest.Manifest, others []*activeKit) error {
	mine, err := kitExports(m, true)
	if err != nil {
		return err
	}
	if len(mine) == 0 {
		return nil
	}
	owner := map[string]string{}
	for _, o := range others {
		if o.name == m.Name {
			continue
		}
		theirs, _ := kitExports(o.manifest, false)
		for _, x := range theirs {
			owner[exportKey(x.Kind, x.ExportID)] = o.name + " as " + x.Kind + " " + x.ExportID
		}
	}
	for _, x := range mine {
		if c, ok := owner[exportKey(x.Kind, x.ExportID)]; ok {
			return fmt.Errorf("kit %s: mirror export %s %s: already installed by kit %s: %w", m.Name, x.Kind, x.ExportID, c, errdef.ErrInvalid)
		}
	}
	return nil
}

// readExports reads the exports.json of the generation folder gdir; nil
// and no error when the generation has none (made before it was written).
func readExports(gdir string) (*mirror.SiteExports, error) {
	p := filepath.Join(gdir, filepath.FromSlash(mirror.SiteExportsPath))
	b, err := limit.ReadRegularFile(p, mirror.MaxSiteExports)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	x, err := mirror.ParseSiteExports(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gdir, err)
	}
	return x, nil
}

// checkExportFiles reports why an export's files are not all in the
// generation folder gdir as regular files of their recorded size.
func checkExportFiles(gdir string, x *mirror.SiteExport) error {
	for _, f := range x.Files {
		p := filepath.Join(gdir, filepath.FromSlash(f.Path))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return fmt.Errorf("%s: %d bytes (%s), exports.json says %d", p, fi.Size(), fi.Mode().Type(), f.Size)
		}
	}
	return nil
}

// mirrorExports builds the mirror part of the new generation in tree: it
// derives the exports of the active kits (the new kit m and the others of
// active), keeps exports of the current generation cur that no active kit
// carries any more (retained: their files hard-linked from cur), per kind
// the active ones always and retained ones newest first up to keep in all
// (and the newest of the kind, so that `latest` never moves backwards),
// then writes .offkit/mirror/exports.json and, per kind, the
// relative link mirror/<kind>/latest -> <greatest exportId>. A retained
// export whose files are no longer all in cur (size checked) is dropped,
// and named in the returned list.
func (s *Site) mirrorExports(tree string, cur int, active []*activeKit, m *manifest.Manifest, keep int) (dropped []string, err error) {
	if keep <= 0 {
		keep = DefaultKeepExports
	}
	all, err := kitExports(m, true)
	if err != nil {
		return nil, err
	}
	for _, k := range active {
		if k.name == m.Name {
			continue
		}
		xs, _ := kitExports(k.manifest, false)
		all = append(all, xs...)
	}
	isActive := map[string]bool{}
	for _, x := range all {
		isActive[exportKey(x.Kind, x.ExportID)] = true
	}
	// What the current generation held: its exports.json, or for a
	// generation made before it was written, its kits' exports.
	var prev []mirror.SiteExport
	cdir := s.path(genDir, strconv.Itoa(cur))
	if cur > 0 {
		px, err := readExports(cdir)
		switch {
		case err != nil:
			dropped = append(dropped, fmt.Sprintf("the exports of generation %d: %v", cur, err))
			fallthrough
		case px == nil:
			for _, k := range active {
				xs, _ := kitExports(k.manifest, false)
				prev = append(prev, xs...)
			}
		default:
			prev = px.Exports
		}
	}
	for _, x := range prev {
		if isActive[exportKey(x.Kind, x.ExportID)] {
			continue
		}
		if err := checkExportFiles(cdir, &x); err != nil {
			dropped = append(dropped, fmt.Sprintf("%s %s: %v", x.Kind, x.ExportID, err))
			continue
		}
		x.Retained = true
		all = append(all, x)
	}
	// Per kind: the active exports always; then retained ones, newest
	// first, while the kind has fewer than keep; and the newest export of
	// the kind even past keep, so that `latest` never moves backwards (an
	// older kit activated by force).
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Kind != all[j].Kind {
			return all[i].Kind < all[j].Kind
		}
		return all[i].ExportID > all[j].ExportID
	})
	count := map[string]int{}
	for _, x := range all {
		if !x.Retained {
			count[x.Kind]++
		}
	}
	var kept []mirror.SiteExport
	for i, x := range all {
		newest := i == 0 || all[i-1].Kind != x.Kind
		if x.Retained {
			if count[x.Kind] >= keep && !newest {
				continue
			}
			count[x.Kind]++
		}
		kept = append(kept, x)
	}
	for _, x := range kept {
		if !x.Retained {
			continue
		}
		for _, f := range x.Files {
			dst := filepath.Join(tree, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, fmt.Errorf("keeping export %s %s: %w", x.Kind, x.ExportID, err)
			}
			if err := os.Link(filepath.Join(cdir, filepath.FromSlash(f.Path)), dst); err != nil {
				return nil, fmt.Errorf("keeping export %s %s: %w", x.Kind, x.ExportID, err)
			}
		}
	}
	out := &mirror.SiteExports{Exports: kept, Latest: mirror.SiteLatestOf(kept)}
	if out.Exports == nil {
		out.Exports = []mirror.SiteExport{}
	}
	if err := out.Check(); err != nil {
		return nil, err
	}
	for kind, id := range out.Latest {
		if err := os.Symlink(id, filepath.Join(tree, "mirror", kind, mirror.SiteLatest)); err != nil {
			return nil, fmt.Errorf("linking mirror/%s/%s: %w", kind, mirror.SiteLatest, err)
		}
	}
	p := filepath.Join(tree, filepath.FromSlash(mirror.SiteExportsPath))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, out.Encode(), 0o444); err != nil {
		return nil, err
	}
	return dropped, nil
}

// checkMirrorGeneration reports what the mirror part of the generation
// folder gdir lacks (see checkGeneration): exports.json parses, every file
// it lists is a regular file of its size, and each kind's `latest` is a
// link to the exportId exports.json names. A generation without
// exports.json (made before it was written) passes.
func checkMirrorGeneration(gdir string) (string, error) {
	x, err := readExports(gdir)
	if err != nil {
		return filepath.Join(gdir, filepath.FromSlash(mirror.SiteExportsPath)), err
	}
	if x == nil {
		return "", nil
	}
	for i := range x.Exports {
		if err := checkExportFiles(gdir, &x.Exports[i]); err != nil {
			return x.Exports[i].Dir(), err
		}
	}
	for kind, id := range x.Latest {
		p := filepath.Join(gdir, "mirror", kind, mirror.SiteLatest)
		target, err := os.Readlink(p)
		if err != nil {
			return p, err
		}
		if target != id {
			return p, fmt.Errorf("points to %q, exports.json says %q", target, id)
		}
	}
	return "", nil
}

// MirrorExports reads the feed-mirror exports of the generation open at gen
// (from OpenGeneration), checked as mirror.ParseSiteExports checks them. A
// generation made before exports were recorded has none: an empty list.
func (v *View) MirrorExports(gen *os.Root) (*mirror.SiteExports, error) {
	b, err := limit.ReadFileIn(gen, mirror.SiteExportsPath, mirror.MaxSiteExports)
	if errors.Is(err, fs.ErrNotExist) {
		return &mirror.SiteExports{Exports: []mirror.SiteExport{}, Latest: map[string]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return mirror.ParseSiteExports(b)
}
