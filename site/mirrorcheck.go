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
	"sort"
	"strings"
	"syscall"

	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// MirrorCheck is what View.CheckMirror found.
type MirrorCheck struct {
	// Generation is the generation checked (the one `current` named).
	Generation int                 `json:"generation"`
	Exports    []MirrorExportCheck `json:"exports"`
	Files      int                 `json:"files"`
	Bytes      int64               `json:"bytes"`
	Signatures int                 `json:"signatures"`
	// Problems lists every file that failed, in the order checked.
	Problems []MirrorProblem `json:"problems"`
	// err is errdef.ErrDigestMismatch if any file's bytes or records
	// disagree, else errdef.ErrSignature if a signature failed.
	err error
}

// MirrorExportCheck is one export's result.
type MirrorExportCheck struct {
	Kind       string `json:"kind"`
	ExportID   string `json:"exportId"`
	Kit        string `json:"kit"`
	KitVersion string `json:"kitVersion"`
	Retained   bool   `json:"retained"`
	Latest     bool   `json:"latest"`
	Files      int    `json:"files"`
	Bytes      int64  `json:"bytes"`
	Signatures int    `json:"signatures"`
	OK         bool   `json:"ok"`
}

// MirrorProblem is one file that failed a check.
type MirrorProblem struct {
	Path string `json:"path"`
	// Kind is "mismatch" (bytes, size or records disagree, or the file is
	// missing) or "signature" (the signature does not verify with a
	// trusted key).
	Kind  string `json:"kind"`
	Error string `json:"error"`
}

// OK reports whether every check passed.
func (c *MirrorCheck) OK() bool { return len(c.Problems) == 0 }

// Err returns nil when every check passed, else an error naming the
// problems that wraps errdef.ErrDigestMismatch when a file's bytes or
// records disagree, errdef.ErrSignature when only signatures failed.
func (c *MirrorCheck) Err() error {
	if c.OK() {
		return nil
	}
	var msgs []string
	for i, p := range c.Problems {
		if i == maxProblemsShown {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(c.Problems)-i))
			break
		}
		msgs = append(msgs, p.Error)
	}
	return fmt.Errorf("generation %d: %d mirror problems: %s: %w", c.Generation, len(c.Problems), strings.Join(msgs, "; "), c.err)
}

// maxProblemsShown bounds the problems Err's message names.
const maxProblemsShown = 20

func (c *MirrorCheck) problem(p, kind string, err error) {
	c.Problems = append(c.Problems, MirrorProblem{Path: p, Kind: kind, Error: err.Error()})
	switch {
	case kind == "mismatch":
		c.err = errdef.ErrDigestMismatch
	case c.err == nil:
		c.err = errdef.ErrSignature
	}
}

// CheckMirror re-checks every feed-mirror file of the generation being
// served, active and retained, for auditors. It resolves `current` once
// and reads only inside that generation (through os.Root: a link cannot
// lead a read outside it), so it needs no lock. It checks:
//   - .offkit/mirror/exports.json parses (else errdef.ErrInvalid);
//   - every export of an active kit is the export that kit's manifest
//     (whose digest the generation's state records) describes: the same
//     files with the same sizes, sha256 and signature records;
//   - every file exports.json lists is a regular file with its size and
//     sha256, read once in constant memory;
//   - each kind's mirror/<kind>/latest links to the exportId exports.json
//     names, and mirror/<kind>/ holds nothing but its exports and latest;
//   - every signed file (bundles, Excititor exports) verifies against its
//     detached signature file with one of keys (package mirror's
//     verifier: JWS, cosign blob or DSSE), and the signature file is the
//     one recorded.
//
// A generation without exports is errdef.ErrNotFound, as is a site with
// nothing installed; no keys while there are signed files is
// errdef.ErrSignature. A file, signature file, link or folder that cannot
// be read (permission denied, I/O error: exit 12, see errdef.ExitCode) is
// an error naming it: the check cannot say whether its bytes match.
// Otherwise the result lists each export and every problem; its Err says
// whether all passed.
func (v *View) CheckMirror(ctx context.Context, keys *mirror.KeySet) (*MirrorCheck, error) {
	return v.checkMirror(ctx, keys, func(gen *os.Root) genFiles { return gen })
}

// genFiles is what CheckMirror reads the files, links and folders of a
// generation through: the generation's *os.Root (tests wrap it to make a
// read fail). Its files are opened with plainfile.OpenRegularNoFollowIn.
type genFiles interface {
	plainfile.Dir
	Readlink(name string) (string, error)
}

// unreadable reports whether err says a file could not be read
// (permission denied, I/O error: exit 12), rather than that it is missing
// or not what was recorded.
func unreadable(err error) bool { return errdef.ExitCode(err) == errdef.ExitIO }

// checkMirror is CheckMirror, reading the generation's files through
// files(gen).
func (v *View) checkMirror(ctx context.Context, keys *mirror.KeySet, files func(*os.Root) genFiles) (*MirrorCheck, error) {
	gen, _, err := v.OpenGeneration()
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	st, err := genState(gen)
	if err != nil {
		return nil, err
	}
	c := &MirrorCheck{Generation: st.Generation, Exports: []MirrorExportCheck{}, Problems: []MirrorProblem{}}
	x, err := v.MirrorExports(gen)
	if err != nil {
		return nil, err
	}
	if len(x.Exports) == 0 {
		return nil, fmt.Errorf("site %s: generation %d has no mirror exports: %w", v.root, c.Generation, errdef.ErrNotFound)
	}
	signed := false
	for _, e := range x.Exports {
		for _, f := range e.Files {
			signed = signed || f.Signature != nil
		}
	}
	if signed && keys.Len() == 0 {
		return nil, fmt.Errorf("no trusted mirror key to check the exports' signatures with: %w", errdef.ErrSignature)
	}
	kits, err := kitManifests(gen, st)
	if err != nil {
		return nil, err
	}
	byName := map[string]*manifest.Manifest{}
	for _, m := range kits {
		byName[m.Name] = m
	}
	// What the active kits carry, to compare exports.json with.
	carried := map[string]mirror.SiteExport{}
	for _, m := range kits {
		xs, _ := kitExports(m, false)
		for _, k := range xs {
			carried[exportKey(k.Kind, k.ExportID)] = k
		}
	}
	listed := map[string]bool{}
	for _, e := range x.Exports {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		before := len(c.Problems)
		ec := MirrorExportCheck{Kind: e.Kind, ExportID: e.ExportID, Kit: e.Kit, KitVersion: e.KitVersion, Retained: e.Retained, Latest: x.Latest[e.Kind] == e.ExportID}
		listed[exportKey(e.Kind, e.ExportID)] = true
		if !e.Retained {
			c.compareWithKit(&e, byName[e.Kit], carried[exportKey(e.Kind, e.ExportID)])
		}
		for _, f := range e.Files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n, sig, err := checkMirrorFile(files(gen), f, keys)
			if unreadable(err) {
				return nil, fmt.Errorf("generation %d: %w", c.Generation, err)
			}
			ec.Files++
			ec.Bytes += n
			if sig {
				ec.Signatures++
			}
			if err != nil {
				kind := "mismatch"
				if errors.Is(err, errdef.ErrSignature) {
					kind = "signature"
				}
				c.problem(f.Path, kind, err)
			}
		}
		ec.OK = len(c.Problems) == before
		c.Files += ec.Files
		c.Bytes += ec.Bytes
		c.Signatures += ec.Signatures
		c.Exports = append(c.Exports, ec)
	}
	for k, e := range carried {
		if !listed[k] {
			c.problem(e.Dir(), "mismatch", fmt.Errorf("%s: export %s %s of kit %s is not in %s", e.Dir(), e.Kind, e.ExportID, e.Kit, mirror.SiteExportsPath))
		}
	}
	if err := c.checkMirrorTree(files(gen), x); err != nil {
		return nil, fmt.Errorf("generation %d: %w", c.Generation, err)
	}
	return c, nil
}

// checkMirrorTree records a problem for each kind folder of the generation
// open at gen whose `latest` is not a link to the exportId x names (or is
// there at all, link or not, when x names none), and for each name in it
// that is neither `latest` nor an export x lists. A link or folder it
// cannot read is its error.
func (c *MirrorCheck) checkMirrorTree(gen genFiles, x *mirror.SiteExports) error {
	for _, kind := range []string{manifest.MirrorConcelier, manifest.MirrorExcititor} {
		dir := "mirror/" + kind
		l := dir + "/" + mirror.SiteLatest
		want := x.Latest[kind]
		target, err := gen.Readlink(l)
		if unreadable(err) {
			return fmt.Errorf("%s: %w", l, err)
		}
		if want != "" && (err != nil || target != want) {
			c.problem(l, "mismatch", fmt.Errorf("%s: links to %q (%v), %s says %q", l, target, err, mirror.SiteExportsPath, want))
		} else if want == "" && err == nil {
			c.problem(l, "mismatch", fmt.Errorf("%s: links to %q, %s lists no %s export", l, target, mirror.SiteExportsPath, kind))
		} else if want == "" && !errors.Is(err, fs.ErrNotExist) {
			c.problem(l, "mismatch", fmt.Errorf("%s: not a link (%v), and %s lists no %s export", l, err, mirror.SiteExportsPath, kind))
		}
		// Opened without waiting: a named pipe put in the folder's place
		// would hold the check until a writer came (reading its names
		// then fails, ENOTDIR).
		f, err := gen.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if unreadable(err) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if err != nil {
			continue // no export of this kind: nothing more to find
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if unreadable(err) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if err != nil {
			c.problem(dir, "mismatch", fmt.Errorf("%s: %w", dir, err))
			continue
		}
		sort.Strings(names)
		for _, n := range names {
			if n != mirror.SiteLatest && x.Export(kind, n) == nil {
				c.problem(dir+"/"+n, "mismatch", fmt.Errorf("%s/%s: not an export %s lists", dir, n, mirror.SiteExportsPath))
			}
		}
	}
	return nil
}

// compareWithKit records a problem for every way export e of exports.json
// differs from what kit m carries (want, derived from m's manifest).
func (c *MirrorCheck) compareWithKit(e *mirror.SiteExport, m *manifest.Manifest, want mirror.SiteExport) {
	if m == nil || m.Version != e.KitVersion {
		c.problem(e.Dir(), "mismatch", fmt.Errorf("%s: %s says kit %s %s carries it, which is not active", e.Dir(), mirror.SiteExportsPath, e.Kit, e.KitVersion))
		return
	}
	if want.Kit != e.Kit {
		c.problem(e.Dir(), "mismatch", fmt.Errorf("%s: kit %s's manifest has no such export", e.Dir(), e.Kit))
		return
	}
	kitFiles := map[string]mirror.SiteFile{}
	for _, f := range want.Files {
		kitFiles[f.Path] = f
	}
	for _, f := range e.Files {
		k, ok := kitFiles[f.Path]
		delete(kitFiles, f.Path)
		switch {
		case !ok:
			c.problem(f.Path, "mismatch", fmt.Errorf("%s: not an entry of kit %s", f.Path, e.Kit))
		case k.Size != f.Size || k.SHA256 != f.SHA256:
			c.problem(f.Path, "mismatch", fmt.Errorf("%s: %s says size %d sha256 %s, kit %s's manifest says size %d sha256 %s", f.Path, mirror.SiteExportsPath, f.Size, f.SHA256, e.Kit, k.Size, k.SHA256))
		case (k.Signature == nil) != (f.Signature == nil) || (k.Signature != nil && *k.Signature != *f.Signature):
			c.problem(f.Path, "mismatch", fmt.Errorf("%s: the signature %s records is not the one kit %s's manifest records", f.Path, mirror.SiteExportsPath, e.Kit))
		}
	}
	for p := range kitFiles {
		c.problem(p, "mismatch", fmt.Errorf("%s: an entry of kit %s that %s does not list", p, e.Kit, mirror.SiteExportsPath))
	}
}

// checkMirrorFile reads the file f of the generation open at gen once: its
// size and sha256 must be f's and, when f is signed, its signature file
// must verify over its bytes with one of keys. It returns the bytes read
// and whether a signature was checked; an error wraps
// errdef.ErrDigestMismatch (missing, not a regular file, other bytes) or
// errdef.ErrSignature, except that an error reading f or its signature
// file that is unreadable (exit 12) is returned as it is.
func checkMirrorFile(gen genFiles, f mirror.SiteFile, keys *mirror.KeySet) (int64, bool, error) {
	r, _, err := plainfile.OpenRegularNoFollowIn(gen, f.Path)
	if err != nil {
		return 0, false, notMatching(f.Path, err)
	}
	defer r.Close()
	var ver *mirror.Verifier
	var verr error
	if s := f.Signature; s != nil {
		var b []byte
		sf, _, err := plainfile.OpenRegularNoFollowIn(gen, s.Path)
		if err == nil {
			b, err = limit.ReadAll(sf, s.Path, mirror.MaxSignatureFile)
			sf.Close()
		}
		if unreadable(err) {
			return 0, false, fmt.Errorf("%s: signature: %w", f.Path, err)
		}
		if err == nil {
			var sig *mirror.Signature
			if sig, err = mirror.ParseSignature(s.Path, b); err == nil {
				if sig.Kind != s.Kind {
					err = fmt.Errorf("%s: a %s signature, recorded as %s: %w", s.Path, sig.Kind, s.Kind, errdef.ErrSignature)
				} else {
					ver, err = sig.NewVerifier(keys, path.Base(f.Path))
				}
			}
		}
		if err != nil {
			verr = fmt.Errorf("%s: signature: %w", f.Path, asSignature(err))
		}
	}
	mismatch := func(n int64, got string) error {
		size := fmt.Sprint(n)
		if n > f.Size {
			size = fmt.Sprintf("over %d", f.Size)
		}
		return fmt.Errorf("%s: %s bytes sha256 %s, recorded %d bytes sha256 %s: %w", f.Path, size, got, f.Size, f.SHA256, errdef.ErrDigestMismatch)
	}
	// Read at most one byte past the recorded size: a longer file is a
	// mismatch, found without reading it all.
	hashed := func(w io.Writer) (int64, error) {
		n, err := copybuf.Copy(w, io.LimitReader(r, f.Size+1))
		if err != nil {
			return n, fmt.Errorf("%s: %w", f.Path, err)
		}
		return n, nil
	}
	if ver == nil {
		h := sha256.New()
		n, err := hashed(h)
		if err != nil {
			return n, f.Signature != nil, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
			return n, f.Signature != nil, mismatch(n, got)
		}
		return n, verr != nil, verr
	}
	// Signed: one pass through the verifier, which hashes the file too.
	n, err := hashed(ver)
	if err != nil {
		return n, true, err
	}
	v, verr := ver.Finish()
	if verr == nil {
		if n != f.Size || v.SHA256 != f.SHA256 {
			return n, true, mismatch(n, v.SHA256)
		}
		return n, true, nil
	}
	// The signature failed: say whether the bytes changed (a mismatch) or
	// only the signature is wrong, reading the file again.
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return n, true, fmt.Errorf("%s: %w", f.Path, err)
	}
	h := sha256.New()
	if n, err = hashed(h); err != nil {
		return n, true, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
		return n, true, mismatch(n, got)
	}
	return n, true, fmt.Errorf("%s: signature %s: %w", f.Path, f.Signature.Path, asSignature(verr))
}

// notMatching is err, from looking up or opening the file p, as a
// mismatch (the file is missing or not a file), or as it is when it says
// p is unreadable (exit 12).
func notMatching(p string, err error) error {
	if unreadable(err) {
		return fmt.Errorf("%s: %w", p, err)
	}
	return fmt.Errorf("%s: %w: %w", p, err, errdef.ErrDigestMismatch)
}

// asSignature makes a signature file that cannot be read or parsed a
// signature failure (exit 5): the file it vouches for is not vouched for.
func asSignature(err error) error {
	if errors.Is(err, errdef.ErrSignature) {
		return err
	}
	return fmt.Errorf("%w: %w", err, errdef.ErrSignature)
}
