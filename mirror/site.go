package mirror

// The feed-mirror exports of an installed site: the record the site package
// writes into every generation it makes, and that `offkit serve`, `offkit
// status` and `offkit mirror verify` read back.

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// SiteExportsPath is where a generation records its exports, relative to
// the generation folder.
const SiteExportsPath = ".offkit/mirror/exports.json"

// SiteLatest is the name of the symbolic link the site makes in
// mirror/<kind>/ of a generation, pointing at the newest exportId of that
// kind (a relative link: the exportId alone). No export may be called so.
const SiteLatest = "latest"

// Limits on exports.json as it is read back.
const (
	// MaxSiteExports bounds the size of exports.json.
	MaxSiteExports = 64 << 20
)

// SiteExports is a generation's .offkit/mirror/exports.json: every feed
// export the generation holds, and the newest exportId of each kind.
type SiteExports struct {
	Exports []SiteExport `json:"exports"`
	// Latest maps a kind to the exportId its `latest` link names: the
	// greatest exportId of that kind in Exports (exportIds sort by time).
	Latest map[string]string `json:"latest"`
}

// SiteExport is one export in a generation: under
// mirror/<kind>/<exportId>/.
type SiteExport struct {
	Kind       string `json:"kind"` // "concelier" or "excititor"
	ExportID   string `json:"exportId"`
	Kit        string `json:"kit"`
	KitVersion string `json:"kitVersion"`
	// Retained: no active kit carries this export any more (the kit's new
	// version dropped it); the site keeps its files, hard-linked from the
	// generation before, within its retention count.
	Retained    bool       `json:"retained"`
	Domains     []string   `json:"domains"`
	Created     string     `json:"created,omitempty"`
	GeneratedAt string     `json:"generatedAt,omitempty"`
	Files       []SiteFile `json:"files"`
}

// SiteFile is one file of an export, as installed.
type SiteFile struct {
	Path   string `json:"path"` // generation path: mirror/<kind>/<exportId>/mirror/…
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
	// Signature is the detached signature the build verified this file
	// against (bundles and Excititor exports), as the kit's mirror[]
	// recorded it; nil for the other files.
	Signature *SiteSignature `json:"signature,omitempty"`
}

// SiteSignature names a file's detached signature.
type SiteSignature struct {
	Path  string `json:"path"` // generation path of the signature file, in the same export
	Kind  string `json:"kind"` // manifest.MirrorSigJWS, MirrorSigCosign or MirrorSigDSSE
	KeyID string `json:"keyId"`
	Alg   string `json:"alg,omitempty"`
}

// Dir returns the export's folder in a generation: mirror/<kind>/<exportId>.
func (x *SiteExport) Dir() string { return "mirror/" + x.Kind + "/" + x.ExportID }

// Time returns when the export was made: its created time, else its
// generatedAt; false when it records neither (or they do not parse).
func (x *SiteExport) Time() (time.Time, bool) {
	for _, s := range []string{x.Created, x.GeneratedAt} {
		if s == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Age returns how old the export is at now (see Time).
func (x *SiteExport) Age(now time.Time) (time.Duration, bool) {
	t, ok := x.Time()
	if !ok {
		return 0, false
	}
	return now.Sub(t), true
}

// Export returns the export of kind with exportId id, nil when there is none.
func (s *SiteExports) Export(kind, id string) *SiteExport {
	for i := range s.Exports {
		if s.Exports[i].Kind == kind && s.Exports[i].ExportID == id {
			return &s.Exports[i]
		}
	}
	return nil
}

// File returns the export holding the file at generation path p, and that
// file's record; false when no export lists p.
func (s *SiteExports) File(p string) (*SiteExport, SiteFile, bool) {
	for i := range s.Exports {
		x := &s.Exports[i]
		if !strings.HasPrefix(p, x.Dir()+"/") {
			continue
		}
		for _, f := range x.Files {
			if f.Path == p {
				return x, f, true
			}
		}
	}
	return nil, SiteFile{}, false
}

// IsSiteKind reports whether kind is a kind of export a site holds.
func IsSiteKind(kind string) bool {
	return kind == manifest.MirrorConcelier || kind == manifest.MirrorExcititor
}

// CheckSiteExportID reports why id cannot name an export on a site (nil when
// it can): it must be a safe mirror name (manifest.CheckMirrorName: 1 to
// 128 letters, digits, '.', '_', '-', not starting with '.') and must not
// be SiteLatest in any case (a case-insensitive file system would make it
// the link). The error wraps errdef.ErrInvalid.
func CheckSiteExportID(id string) error {
	if err := manifest.CheckMirrorName(id); err != nil {
		return fmt.Errorf("exportId %q: %v: %w", id, err, errdef.ErrInvalid)
	}
	if strings.EqualFold(id, SiteLatest) {
		return fmt.Errorf("exportId %q: %q is the site's link to the newest export: %w", id, SiteLatest, errdef.ErrInvalid)
	}
	return nil
}

// SplitSitePath splits a path under mirror/ of a kit or generation into its
// kind and exportId, checking that it has the layout of an export file:
// mirror/<kind>/<exportId>/mirror/<rest>, kind concelier or excititor, a
// safe exportId (CheckSiteExportID) and a non-empty rest. Anything else
// wraps errdef.ErrInvalid.
func SplitSitePath(p string) (kind, exportID string, err error) {
	parts := strings.SplitN(p, "/", 5)
	if !fs.ValidPath(p) || len(parts) < 5 || parts[0] != "mirror" || parts[3] != "mirror" || parts[4] == "" {
		return "", "", fmt.Errorf("%q: a mirror file must be mirror/concelier/<exportId>/mirror/… or mirror/excititor/<exportId>/mirror/…: %w", p, errdef.ErrInvalid)
	}
	if !IsSiteKind(parts[1]) {
		return "", "", fmt.Errorf("%q: kind %q: not concelier or excititor: %w", p, parts[1], errdef.ErrInvalid)
	}
	if err := CheckSiteExportID(parts[2]); err != nil {
		return "", "", fmt.Errorf("%q: %w", p, err)
	}
	return parts[1], parts[2], nil
}

var siteHex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseSiteExports parses exports.json and checks it: every kind is
// concelier or excititor, exportIds are safe and unique per kind, every
// file path is under its export's mirror/<kind>/<exportId>/mirror/ and
// listed once, sizes are not negative, digests are 64 lowercase hex, and
// Latest names, for each kind present and no other, its greatest exportId.
// A violation wraps errdef.ErrInvalid. Unknown fields are ignored.
func ParseSiteExports(b []byte) (*SiteExports, error) {
	if len(b) > MaxSiteExports {
		return nil, fmt.Errorf("%s: over %d bytes: %w", SiteExportsPath, MaxSiteExports, errdef.ErrInvalid)
	}
	var s SiteExports
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", SiteExportsPath, err, errdef.ErrInvalid)
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Check checks s as ParseSiteExports does.
func (s *SiteExports) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: "+format+": %w", append(append([]any{SiteExportsPath}, a...), errdef.ErrInvalid)...)
	}
	newest := map[string]string{}
	seen := map[string]bool{}
	files := map[string]bool{}
	for i, x := range s.Exports {
		if !IsSiteKind(x.Kind) {
			return bad("exports[%d]: kind %q: not concelier or excititor", i, x.Kind)
		}
		if err := CheckSiteExportID(x.ExportID); err != nil {
			return bad("exports[%d]: %v", i, err)
		}
		key := x.Kind + "/" + strings.ToLower(x.ExportID)
		if seen[key] {
			return bad("exports[%d]: %s %s listed twice", i, x.Kind, x.ExportID)
		}
		seen[key] = true
		if x.ExportID > newest[x.Kind] {
			newest[x.Kind] = x.ExportID
		}
		prefix := x.Dir() + "/mirror/"
		for j, f := range x.Files {
			if !strings.HasPrefix(f.Path, prefix) || !fs.ValidPath(f.Path) || f.Path == prefix {
				return bad("exports[%d].files[%d]: path %q is not under %s", i, j, f.Path, prefix)
			}
			if files[f.Path] {
				return bad("exports[%d].files[%d]: path %q listed twice", i, j, f.Path)
			}
			files[f.Path] = true
			if f.Size < 0 {
				return bad("exports[%d].files[%d]: size %d", i, j, f.Size)
			}
			if !siteHex.MatchString(f.SHA256) {
				return bad("exports[%d].files[%d]: sha256 %q is not 64 lowercase hex", i, j, f.SHA256)
			}
			if sig := f.Signature; sig != nil {
				if !strings.HasPrefix(sig.Path, prefix) || !fs.ValidPath(sig.Path) || sig.Path == f.Path {
					return bad("exports[%d].files[%d]: signature path %q is not another file under %s", i, j, sig.Path, prefix)
				}
				switch sig.Kind {
				case manifest.MirrorSigJWS, manifest.MirrorSigCosign, manifest.MirrorSigDSSE:
				default:
					return bad("exports[%d].files[%d]: signature kind %q", i, j, sig.Kind)
				}
			}
		}
	}
	for kind, id := range s.Latest {
		if newest[kind] != id {
			return bad("latest %s is %q, the newest %s export is %q", kind, id, kind, newest[kind])
		}
	}
	for kind, id := range newest {
		if s.Latest[kind] != id {
			return bad("latest %s is %q, the newest %s export is %q", kind, s.Latest[kind], kind, id)
		}
	}
	return nil
}

// Encode returns the canonical bytes of s: exports sorted by kind then
// exportId, files by path, lists never null, two-space indent.
func (s *SiteExports) Encode() []byte {
	out := SiteExports{Exports: make([]SiteExport, len(s.Exports)), Latest: map[string]string{}}
	copy(out.Exports, s.Exports)
	for k, v := range s.Latest {
		out.Latest[k] = v
	}
	sort.Slice(out.Exports, func(i, j int) bool {
		a, b := out.Exports[i], out.Exports[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ExportID < b.ExportID
	})
	for i := range out.Exports {
		x := &out.Exports[i]
		x.Files = append([]SiteFile{}, x.Files...)
		sort.Slice(x.Files, func(a, b int) bool { return x.Files[a].Path < x.Files[b].Path })
		if x.Domains == nil {
			x.Domains = []string{}
		}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return append(b, '\n')
}

// SiteLatestOf returns, for each kind present in exports, its greatest
// exportId: what Latest must say.
func SiteLatestOf(exports []SiteExport) map[string]string {
	out := map[string]string{}
	for _, x := range exports {
		if x.ExportID > out[x.Kind] {
			out[x.Kind] = x.ExportID
		}
	}
	return out
}

// FileDomains lists the domains the export's files hold: the folders under
// mirror/<kind>/<exportId>/mirror/, sorted (for an export whose kit recorded
// none).
func (x *SiteExport) FileDomains() []string {
	set := map[string]bool{}
	for _, f := range x.Files {
		rest := strings.TrimPrefix(f.Path, x.Dir()+"/mirror/")
		if d, _, ok := strings.Cut(rest, "/"); ok {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}
