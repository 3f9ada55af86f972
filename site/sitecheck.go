package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/manifest"
)

// MaxSiteProblems bounds the problems a SiteCheck names; Mismatches counts
// them all.
const MaxSiteProblems = 100

// SiteCheck is what View.Check found.
type SiteCheck struct {
	// Generation is the generation checked (the one `current` named).
	Generation int `json:"generation"`
	// Kits lists each active kit, in the order of the generation's state.
	Kits []SiteKitCheck `json:"kits"`
	// Files and Bytes count every file read, once however many kits list
	// it: tree files, store blobs and the files of retained mirror exports.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// MirrorExports counts the feed-mirror exports of the generation
	// (exports.json), active and retained.
	MirrorExports int `json:"mirrorExports"`
	// MirrorRetained counts the files of retained feed-mirror exports
	// checked by size and sha256 against exports.json (their signatures
	// are `offkit mirror verify`'s).
	MirrorRetained int `json:"mirrorRetained"`
	// Mismatches counts every file that failed; Problems names the first
	// MaxSiteProblems of them, in the order checked.
	Mismatches int           `json:"mismatches"`
	Problems   []SiteProblem `json:"problems"`
}

// SiteKitCheck is one kit's result.
type SiteKitCheck struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Files counts its entries checked in the generation tree (the debug
	// manifest and image index among them), Blobs its image blobs checked
	// in the store; Bytes is their recorded sizes. OK is false when one of
	// them failed (a file it shares with another kit included).
	Files int   `json:"files"`
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	OK    bool  `json:"ok"`
}

// SiteProblem is one file that is missing, not a regular file, or holds
// other bytes than its record says.
type SiteProblem struct {
	// Path is relative to the site root (generations/N/…, store/…).
	Path string `json:"path"`
	// Kit is the kit whose manifest records the file ("" for a retained
	// mirror export's file, recorded by exports.json).
	Kit  string `json:"kit"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

func (p SiteProblem) String() string {
	return fmt.Sprintf("%s: %s, want %s", p.Path, p.Got, p.Want)
}

// OK reports whether every file matched.
func (c *SiteCheck) OK() bool { return c.Mismatches == 0 }

// Err returns nil when every file matched, else an error naming the first
// problems (maxProblemsShown) and wrapping errdef.ErrDigestMismatch.
func (c *SiteCheck) Err() error {
	if c.OK() {
		return nil
	}
	var msgs []string
	for i, p := range c.Problems {
		if i == maxProblemsShown {
			break
		}
		msgs = append(msgs, p.String())
	}
	if more := c.Mismatches - len(msgs); more > 0 {
		msgs = append(msgs, fmt.Sprintf("and %d more", more))
	}
	return fmt.Errorf("generation %d: %d files do not match: %s: %w", c.Generation, c.Mismatches, strings.Join(msgs, "; "), errdef.ErrDigestMismatch)
}

func (c *SiteCheck) problem(p SiteProblem) {
	c.Mismatches++
	if len(c.Problems) < MaxSiteProblems {
		c.Problems = append(c.Problems, p)
	}
}

// Check re-reads every installed byte of the generation being served
// against the manifests of its active kits, for auditors. It resolves
// `current` once, reads only inside that generation (through os.Root) and
// the blob store, takes no lock and writes nothing:
//   - every entry outside images/ is a regular file of the generation tree
//     (a link is not followed: it is a problem), at its kit path, or for
//     debug/debug-manifest.json at .offkit/kits/NAME/debug-manifest.json;
//   - images/index.json is .offkit/kits/NAME/index.json; every
//     images/blobs/sha256/<hex> entry is a regular file of the store;
//   - each has the manifest's size and sha256, read once in constant
//     memory (at most one byte past the size);
//   - the files of retained feed-mirror exports (which no active kit
//     records) have the size and sha256 .offkit/mirror/exports.json
//     records; their signatures are `offkit mirror verify`'s.
//
// A site with nothing installed is errdef.ErrNotFound; a generation whose
// state or manifests cannot be read, or a file that cannot be read
// (permission denied, I/O error: exit 12), is an error naming it. Otherwise the result
// counts every file and names every problem (up to MaxSiteProblems); its
// Err says whether all matched.
func (v *View) Check(ctx context.Context) (*SiteCheck, error) {
	gen, _, err := v.OpenGeneration()
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	st, err := genState(gen)
	if err != nil {
		return nil, err
	}
	kits, err := kitManifests(gen, st)
	if err != nil {
		return nil, err
	}
	c := &SiteCheck{Generation: st.Generation, Kits: []SiteKitCheck{}, Problems: []SiteProblem{}}
	prefix := path.Join(genDir, fmt.Sprint(st.Generation))
	// Files already checked, by path from the root, with what was found:
	// kits may share a blob or a .build-id file, which is read once.
	checked := map[string]string{}
	// The store's blobs are opened in their folder as tree files are in
	// the generation.
	blobs, blobsErr := os.OpenRoot(filepath.Join(v.root, filepath.FromSlash(storeBlobs)))
	if blobsErr == nil {
		defer blobs.Close()
	}
	openBlob := func(hexd string) (*os.File, fs.FileInfo, error) {
		if blobsErr != nil {
			return nil, nil, blobsErr
		}
		if !reponame.ValidDigest("sha256:" + hexd) {
			return nil, nil, fmt.Errorf("digest %q: %w", "sha256:"+hexd, errdef.ErrInvalid)
		}
		return plainfile.OpenRegularNoFollowIn(blobs, hexd)
	}
	for _, m := range kits {
		kc := SiteKitCheck{Name: m.Name, Version: m.Version, OK: true}
		for _, e := range m.Entries {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			want := record{size: e.Size, sha256: e.SHA256}
			var p, wants string
			var open func() (*os.File, fs.FileInfo, error)
			hexd, isBlob := strings.CutPrefix(e.Path, manifest.ImageBlobDir)
			switch {
			case inTree(e.Path) || e.Path == manifest.ImageIndexPath:
				gp := treePath(gen, m.Name, e.Path)
				p, wants = path.Join(prefix, gp), want.String()
				open = func() (*os.File, fs.FileInfo, error) { return plainfile.OpenRegularNoFollowIn(gen, gp) }
				kc.Files++
			case isBlob:
				p, wants = path.Join(storeBlobs, hexd), "sha256:"+hexd+", "+want.String()
				open = func() (*os.File, fs.FileInfo, error) { return openBlob(hexd) }
				kc.Blobs++
			default:
				continue // images/oci-layout is not kept: the store has its own
			}
			kc.Bytes += e.Size
			got, done := checked[p]
			if !done {
				var n int64
				var err error
				if n, got, err = checkFile(open, want); err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				checked[p] = got
				c.Files++
				c.Bytes += n
				if got != "" {
					c.problem(SiteProblem{Path: p, Kit: m.Name, Want: wants, Got: got})
				}
			}
			if got != "" {
				kc.OK = false
			}
		}
		c.Kits = append(c.Kits, kc)
	}
	// Retained mirror exports: no active kit records them, exports.json
	// does (CheckMirror compares it with the kits and checks signatures).
	x, err := v.MirrorExports(gen)
	if err != nil {
		return nil, err
	}
	c.MirrorExports = len(x.Exports)
	for _, e := range x.Exports {
		if !e.Retained {
			continue
		}
		for _, f := range e.Files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			want := record{size: f.Size, sha256: f.SHA256}
			n, got, err := checkFile(func() (*os.File, fs.FileInfo, error) { return plainfile.OpenRegularNoFollowIn(gen, f.Path) }, want)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path.Join(prefix, f.Path), err)
			}
			c.MirrorRetained++
			c.Files++
			c.Bytes += n
			if got != "" {
				c.problem(SiteProblem{Path: path.Join(prefix, f.Path), Want: want.String(), Got: got})
			}
		}
	}
	return c, nil
}

// record is the size and sha256 (hex) a file must have.
type record struct {
	size   int64
	sha256 string
}

func (r record) String() string { return fmt.Sprintf("%d bytes sha256 %s", r.size, r.sha256) }

// treePath is where kit's entry p is in the generation open at gen
// (slash-separated): its kit path, the debug manifest in the kit's
// metadata (at its kit path in generations made before that), the image
// index as .offkit/kits/NAME/index.json.
func treePath(gen *os.Root, kit, p string) string {
	switch p {
	case manifest.ImageIndexPath:
		return path.Join(metaDir, "kits", kit, "index.json")
	case debugstore.ManifestPath:
		if _, err := gen.Lstat(DebugManifestPath(kit)); errors.Is(err, fs.ErrNotExist) {
			if _, err := gen.Lstat(p); err == nil {
				return p
			}
		}
		return DebugManifestPath(kit)
	}
	return p
}

// checkFile opens a file with open (plainfile.OpenRegularNoFollowIn: a
// link or anything else not a regular file is refused with the info of
// what is there) and hashes it against want. It returns the bytes read
// and "" when it matches, else what was found instead: "missing", "a
// symlink, not a regular file", the size and sha256 read, or the error
// opening or reading it. An error that says the site cannot be read
// (permission denied, I/O error: exit 12, see errdef.ExitCode) is
// returned as err: the check cannot say whether the bytes match.
func checkFile(open func() (*os.File, fs.FileInfo, error), want record) (int64, string, error) {
	failed := func(n int64, err error) (int64, string, error) {
		if unreadable(err) {
			return n, "", err
		}
		return n, err.Error(), nil
	}
	f, fi, err := open()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, "missing", nil
	case errors.Is(err, plainfile.ErrChanged):
		return 0, "replaced while it was checked", nil
	case errors.Is(err, errdef.ErrInvalid) && fi != nil:
		return 0, fmt.Sprintf("a %s, not a regular file", plainfile.TypeName(fi.Mode())), nil
	case err != nil:
		return failed(0, err)
	}
	defer f.Close()
	h := sha256.New()
	// At most one byte past the size: a longer file is a mismatch, found
	// without reading it all.
	n, err := copybuf.Copy(h, io.LimitReader(f, want.size+1))
	if err != nil {
		return failed(n, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case n > want.size:
		return n, fmt.Sprintf("over %d bytes", want.size), nil
	case n != want.size || got != want.sha256:
		return n, fmt.Sprintf("%d bytes sha256 %s", n, got), nil
	}
	return n, "", nil
}
