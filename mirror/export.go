package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/ctxio"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
)

// Limits on an export.
const (
	MaxIndexFile   = 16 << 20 // bytes of an index.json or manifest.json
	MaxExportFiles = 100000   // files in one export
)

// Export id selectors (Source.ExportID).
const (
	SelectLatest = "latest" // the latest link, else the newest export (the default)
	SelectNewest = "newest" // the greatest export id
)

// The formats an Excititor export may have.
var excititorFormats = []string{"json", "jsonl", "openvex", "csaf"}

// Source names one export to read and the keys its signatures must verify
// with.
type Source struct {
	Kind string // manifest.MirrorConcelier or manifest.MirrorExcititor
	// Root is the export root: ROOT/<exportId>/mirror/…, ROOT/latest.
	Root string
	// ExportID is SelectLatest (or ""), SelectNewest, or an export id.
	ExportID string
	// Domains picks the domains to carry; nil carries all.
	Domains []string
	Keys    *KeySet
}

// Export is an export whose layout has been checked and whose signed files
// have been verified.
type Export struct {
	Kind string
	ID   string
	// Dir is ROOT/<exportId>.
	Dir string
	// Domains are the domains carried, sorted.
	Domains []string
	// Created is the newest domain manifest's "created"; GeneratedAt the
	// newest bundle's or domain index's "generatedAt" (UTC, whole seconds).
	Created, GeneratedAt *time.Time
	// Files are every file carried, sorted by Rel: mirror/index.json and
	// the carried domains' files.
	Files []File
	// Signed are the signed files (Concelier bundle.json, Excititor
	// exports), as the kit manifest's mirror[].files records them.
	Signed []manifest.MirrorFile
}

// File is one file of an export.
type File struct {
	Rel    string // slash path under ROOT/<exportId>: mirror/…
	Abs    string // path on disk
	Size   int64
	SHA256 string
}

// KitPath returns the kit path of a file of the export:
// mirror/<kind>/<exportId>/<rel>.
func (e *Export) KitPath(rel string) string {
	return "mirror/" + e.Kind + "/" + e.ID + "/" + rel
}

// Record returns the kit manifest's record of the export.
func (e *Export) Record() manifest.Mirror {
	return manifest.Mirror{
		Kind: e.Kind, ExportID: e.ID, Domains: slices.Clone(e.Domains),
		Created: e.Created, GeneratedAt: e.GeneratedAt, Files: slices.Clone(e.Signed),
	}
}

// Open resolves the export src names, checks its layout and verifies the
// signature of every signed file of the carried domains, reading each file
// once. Errors name the file or field at fault and wrap errdef.ErrInvalid
// (layout, JSON, names), errdef.ErrSignature (a signature that does not
// verify with a trusted key), errdef.ErrDigestMismatch (an Excititor file
// that is not what its index says) or errdef.ErrNotFound (no such export
// or domain).
func Open(ctx context.Context, src Source) (*Export, error) {
	if src.Kind != manifest.MirrorConcelier && src.Kind != manifest.MirrorExcititor {
		return nil, fmt.Errorf("mirror kind %q: not %s or %s: %w", src.Kind, manifest.MirrorConcelier, manifest.MirrorExcititor, errdef.ErrInvalid)
	}
	id, err := ResolveID(src.Root, src.ExportID)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(src.Root, id)
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", dir, err)
	}
	defer r.Close()
	c := &checker{ctx: ctx, root: r, dir: dir, keys: src.Keys, e: &Export{Kind: src.Kind, ID: id, Dir: dir}}
	if err := c.check(src); err != nil {
		return nil, err
	}
	slices.SortFunc(c.e.Files, func(a, b File) int { return strings.Compare(a.Rel, b.Rel) })
	slices.SortFunc(c.e.Signed, func(a, b manifest.MirrorFile) int { return strings.Compare(a.Path, b.Path) })
	return c.e, nil
}

// ResolveID picks the export id under root: sel "" or SelectLatest follows
// ROOT/latest (a symbolic link to a sibling export folder), or takes the
// newest export when there is no such link; SelectNewest takes the
// greatest export id (ids such as 20251123T000000Z sort by time); any
// other sel names the export.
func ResolveID(root, sel string) (string, error) {
	switch sel {
	case "", SelectLatest:
		link := filepath.Join(root, "latest")
		st, err := os.Lstat(link)
		if errors.Is(err, fs.ErrNotExist) {
			return newest(root)
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return "", fmt.Errorf("%s: not a symbolic link to an export: %w", link, errdef.ErrInvalid)
		}
		t, err := os.Readlink(link)
		if err != nil {
			return "", err
		}
		id := strings.TrimSuffix(filepath.ToSlash(t), "/")
		id = strings.TrimPrefix(id, "./")
		if err := manifest.CheckMirrorName(id); err != nil || strings.Contains(id, "/") {
			return "", fmt.Errorf("%s -> %q: the link must name a sibling export folder: %w", link, t, errdef.ErrInvalid)
		}
		return id, exportDir(root, id)
	case SelectNewest:
		return newest(root)
	}
	if err := manifest.CheckMirrorName(sel); err != nil {
		return "", fmt.Errorf("exportId %q: %v: %w", sel, err, errdef.ErrInvalid)
	}
	return sel, exportDir(root, sel)
}

func exportDir(root, id string) error {
	p := filepath.Join(root, id)
	st, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("export %s: %w", p, errdef.ErrNotFound)
	case err != nil:
		return err
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("export %s: a symbolic link; an export is a folder: %w", p, errdef.ErrInvalid)
	case !st.IsDir():
		return fmt.Errorf("export %s: not a folder: %w", p, errdef.ErrInvalid)
	}
	return nil
}

// newest returns the greatest name of the export folders under root.
func newest(root string) (string, error) {
	des, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("export root %s: %w", root, errdef.ErrNotFound)
		}
		return "", err
	}
	best := ""
	for _, d := range des {
		if d.IsDir() && d.Type()&fs.ModeSymlink == 0 && manifest.CheckMirrorName(d.Name()) == nil && d.Name() > best {
			best = d.Name()
		}
	}
	if best == "" {
		return "", fmt.Errorf("export root %s: no export folder: %w", root, errdef.ErrNotFound)
	}
	return best, nil
}

type checker struct {
	ctx  context.Context
	root *os.Root
	dir  string
	keys *KeySet
	e    *Export
	n    int
}

func (c *checker) name(rel string) string { return filepath.Join(c.dir, filepath.FromSlash(rel)) }

// list returns the names in folder rel of the export, refusing symbolic
// links, devices and unsafe names; dirs says which are folders.
func (c *checker) list(rel string) (names []string, dirs map[string]bool, err error) {
	// O_DIRECTORY: a named pipe put where a folder was is refused
	// (ENOTDIR), not waited on.
	f, err := c.root.OpenFile(filepath.FromSlash(rel), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: missing: %w", c.name(rel), errdef.ErrInvalid)
		}
		return nil, nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.name(rel), err)
	}
	dirs = map[string]bool{}
	for _, d := range des {
		p := c.name(path.Join(rel, d.Name()))
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return nil, nil, fmt.Errorf("%s: a symbolic link inside the export (exports are carried as regular files only): %w", p, errdef.ErrInvalid)
		case t.IsDir():
			dirs[d.Name()] = true
		case !t.IsRegular():
			return nil, nil, fmt.Errorf("%s: not a regular file or folder: %w", p, errdef.ErrInvalid)
		}
		if err := manifest.CheckMirrorName(d.Name()); err != nil {
			return nil, nil, fmt.Errorf("%s: unsafe name: %v: %w", p, err, errdef.ErrInvalid)
		}
		if c.n++; c.n > MaxExportFiles {
			return nil, nil, fmt.Errorf("%s: over %d files in the export: %w", c.dir, MaxExportFiles, errdef.ErrInvalid)
		}
		names = append(names, d.Name())
	}
	slices.Sort(names)
	return names, dirs, nil
}

// readSmall reads a small file of the export (an index, a domain
// manifest, a signature) and records it as carried.
func (c *checker) readSmall(rel string, max int64) ([]byte, error) {
	b, err := limit.ReadFileIn(c.root, filepath.FromSlash(rel), max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name(rel), err)
	}
	sum := sha256.Sum256(b)
	c.e.Files = append(c.e.Files, File{Rel: rel, Abs: c.name(rel), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	return b, nil
}

type exportIndex struct {
	SchemaVersion *int `json:"schemaVersion"`
	Domains       []struct {
		ID *string `json:"id"`
	} `json:"domains"`
}

func (c *checker) check(src Source) error {
	st, err := c.root.Lstat("mirror")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: missing: an export holds mirror/index.json and a folder per domain: %w", c.name("mirror"), errdef.ErrInvalid)
	case err != nil:
		return err
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s: a symbolic link inside the export (exports are carried as regular files only): %w", c.name("mirror"), errdef.ErrInvalid)
	case !st.IsDir():
		return fmt.Errorf("%s: not a folder: %w", c.name("mirror"), errdef.ErrInvalid)
	}
	top, dirs, err := c.list("mirror")
	if err != nil {
		return err
	}
	b, err := c.readSmall("mirror/index.json", MaxIndexFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: missing: %w", c.name("mirror/index.json"), errdef.ErrInvalid)
		}
		return err
	}
	var idx exportIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("%s: %v: %w", c.name("mirror/index.json"), err, errdef.ErrInvalid)
	}
	if idx.SchemaVersion == nil || *idx.SchemaVersion != 1 {
		return fmt.Errorf("%s: schemaVersion: want 1: %w", c.name("mirror/index.json"), errdef.ErrInvalid)
	}
	listed := map[string]bool{}
	var all []string
	for i, d := range idx.Domains {
		field := fmt.Sprintf("%s: domains[%d].id", c.name("mirror/index.json"), i)
		if d.ID == nil {
			return fmt.Errorf("%s: missing: %w", field, errdef.ErrInvalid)
		}
		if err := manifest.CheckMirrorName(*d.ID); err != nil {
			return fmt.Errorf("%s: %v: %w", field, err, errdef.ErrInvalid)
		}
		if listed[*d.ID] {
			return fmt.Errorf("%s: %q is listed twice: %w", field, *d.ID, errdef.ErrInvalid)
		}
		listed[*d.ID] = true
		all = append(all, *d.ID)
		if !dirs[*d.ID] {
			return fmt.Errorf("%s: domain %q is listed, but its folder %s is missing: %w", field, *d.ID, c.name("mirror/"+*d.ID), errdef.ErrInvalid)
		}
	}
	for _, n := range top {
		switch {
		case n == "index.json" && !dirs[n]:
		case dirs[n] && listed[n]:
		case dirs[n]:
			return fmt.Errorf("%s: a domain folder that mirror/index.json does not list: %w", c.name("mirror/"+n), errdef.ErrInvalid)
		default:
			return fmt.Errorf("%s: not part of the export layout (mirror/ holds index.json and one folder per domain): %w", c.name("mirror/"+n), errdef.ErrInvalid)
		}
	}
	carry := all
	if src.Domains != nil {
		carry = nil
		for i, d := range src.Domains {
			if !listed[d] {
				return fmt.Errorf("domains[%d] %q: not a domain of export %s (it has %s): %w", i, d, c.dir, strings.Join(all, ", "), errdef.ErrNotFound)
			}
			if !slices.Contains(carry, d) {
				carry = append(carry, d)
			}
		}
	}
	slices.Sort(carry)
	c.e.Domains = carry
	for _, d := range carry {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if c.e.Kind == manifest.MirrorConcelier {
			err = c.concelierDomain(d)
		} else {
			err = c.excititorDomain(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// domainFiles lists a domain folder, which holds exactly want (no folders).
func (c *checker) domainFiles(domain string, want []string) error {
	rel := "mirror/" + domain
	names, dirs, err := c.list(rel)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !slices.Contains(names, w) || dirs[w] {
			return fmt.Errorf("%s: missing: %w", c.name(rel+"/"+w), errdef.ErrInvalid)
		}
	}
	for _, n := range names {
		if !slices.Contains(want, n) {
			return fmt.Errorf("%s: not part of the export layout (%s holds %s): %w", c.name(rel+"/"+n), rel, strings.Join(want, ", "), errdef.ErrInvalid)
		}
	}
	return nil
}

func (c *checker) concelierDomain(d string) error {
	rel := "mirror/" + d + "/"
	if err := c.domainFiles(d, []string{"bundle.json", "bundle.json.jws", "manifest.json"}); err != nil {
		return err
	}
	b, err := c.readSmall(rel+"manifest.json", MaxIndexFile)
	if err != nil {
		return err
	}
	var dm struct {
		DomainID *string `json:"domainId"`
		Created  *string `json:"created"`
	}
	if err := json.Unmarshal(b, &dm); err != nil {
		return fmt.Errorf("%s: %v: %w", c.name(rel+"manifest.json"), err, errdef.ErrInvalid)
	}
	if dm.DomainID == nil || *dm.DomainID != d {
		return fmt.Errorf("%s: domainId: want %q: %w", c.name(rel+"manifest.json"), d, errdef.ErrInvalid)
	}
	if dm.Created != nil {
		t, err := parseTime(c.name(rel+"manifest.json")+": created", *dm.Created)
		if err != nil {
			return err
		}
		c.e.Created = later(c.e.Created, t)
	}
	mf, gen, err := c.signed(d, "bundle.json", "json")
	if err != nil {
		return err
	}
	if gen != nil {
		c.e.GeneratedAt = later(c.e.GeneratedAt, gen)
	}
	c.e.Signed = append(c.e.Signed, mf)
	return nil
}

type domainIndex struct {
	SchemaVersion *int    `json:"schemaVersion"`
	DomainID      *string `json:"domainId"`
	GeneratedAt   *string `json:"generatedAt"`
	Exports       []struct {
		ExportKey string `json:"exportKey"`
		Format    string `json:"format"`
		File      string `json:"file"`
		SHA256    string `json:"sha256"`
		Size      *int64 `json:"size"`
	} `json:"exports"`
}

func (c *checker) excititorDomain(d string) error {
	rel := "mirror/" + d + "/"
	name := c.name(rel + "index.json")
	b, err := c.readSmall(rel+"index.json", MaxIndexFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: missing: %w", name, errdef.ErrInvalid)
		}
		return err
	}
	var di domainIndex
	if err := json.Unmarshal(b, &di); err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, errdef.ErrInvalid)
	}
	if di.SchemaVersion == nil || *di.SchemaVersion != 1 {
		return fmt.Errorf("%s: schemaVersion: want 1: %w", name, errdef.ErrInvalid)
	}
	if di.DomainID == nil || *di.DomainID != d {
		return fmt.Errorf("%s: domainId: want %q: %w", name, d, errdef.ErrInvalid)
	}
	if di.GeneratedAt != nil {
		t, err := parseTime(name+": generatedAt", *di.GeneratedAt)
		if err != nil {
			return err
		}
		c.e.GeneratedAt = later(c.e.GeneratedAt, t)
	}
	want := []string{"index.json"}
	keys := map[string]bool{}
	for i, x := range di.Exports {
		field := fmt.Sprintf("%s: exports[%d]", name, i)
		if err := manifest.CheckMirrorName(x.ExportKey); err != nil {
			return fmt.Errorf("%s.exportKey: %v: %w", field, err, errdef.ErrInvalid)
		}
		if !slices.Contains(excititorFormats, x.Format) {
			return fmt.Errorf("%s.format %q: not one of %s: %w", field, x.Format, strings.Join(excititorFormats, ", "), errdef.ErrInvalid)
		}
		if err := manifest.CheckMirrorName(x.File); err != nil {
			return fmt.Errorf("%s.file: %v: %w", field, err, errdef.ErrInvalid)
		}
		if x.File == "index.json" || strings.HasSuffix(x.File, ".jws") {
			return fmt.Errorf("%s.file %q: an export cannot be the index or a signature: %w", field, x.File, errdef.ErrInvalid)
		}
		if len(x.SHA256) != 64 || strings.Trim(x.SHA256, "0123456789abcdef") != "" {
			return fmt.Errorf("%s.sha256 %q: not 64 lowercase hex digits: %w", field, x.SHA256, errdef.ErrInvalid)
		}
		if x.Size == nil || *x.Size < 0 {
			return fmt.Errorf("%s.size: missing or negative: %w", field, errdef.ErrInvalid)
		}
		if k := x.ExportKey + "\x00" + x.Format; keys[k] {
			return fmt.Errorf("%s: exportKey %q with format %q is listed twice: %w", field, x.ExportKey, x.Format, errdef.ErrInvalid)
		} else {
			keys[k] = true
		}
		if slices.Contains(want, x.File) {
			return fmt.Errorf("%s.file %q: listed twice: %w", field, x.File, errdef.ErrInvalid)
		}
		want = append(want, x.File, x.File+".jws")
	}
	if err := c.domainFiles(d, want); err != nil {
		return err
	}
	for i, x := range di.Exports {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		mf, _, err := c.signed(d, x.File, x.Format)
		if err != nil {
			return err
		}
		if mf.SHA256 != x.SHA256 || mf.Size != *x.Size {
			return fmt.Errorf("%s: is %d bytes with sha256 %s, but %s exports[%d] says %d bytes with sha256 %s: %w",
				c.name(rel+x.File), mf.Size, mf.SHA256, name, i, *x.Size, x.SHA256, errdef.ErrDigestMismatch)
		}
		mf.ExportKey, mf.Format = x.ExportKey, x.Format
		c.e.Signed = append(c.e.Signed, mf)
	}
	return nil
}

// signed verifies file of domain d against file.jws in one read, checking
// that it is JSON (format "jsonl": JSON Lines), and records both files.
func (c *checker) signed(d, file, format string) (manifest.MirrorFile, *time.Time, error) {
	rel := "mirror/" + d + "/" + file
	name := c.name(rel)
	sb, err := c.readSmall(rel+".jws", MaxSignatureFile)
	if err != nil {
		return manifest.MirrorFile{}, nil, err
	}
	sig, err := ParseSignature(c.name(rel+".jws"), sb)
	if err != nil {
		return manifest.MirrorFile{}, nil, err
	}
	v, err := sig.NewVerifier(c.keys, file)
	if err != nil {
		return manifest.MirrorFile{}, nil, err
	}
	// Listed as a regular file; a named pipe put in its place since is
	// refused, not waited on.
	f, _, err := plainfile.OpenRegularIn(c.root, filepath.FromSlash(rel))
	if err != nil {
		return manifest.MirrorFile{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	js := &jsonScan{seq: format == "jsonl"}
	if _, err := copybuf.Copy(io.MultiWriter(v, js), ctxio.Reader(c.ctx, f)); err != nil {
		if errors.Is(err, errdef.ErrInvalid) {
			return manifest.MirrorFile{}, nil, fmt.Errorf("%s: %w", name, err)
		}
		return manifest.MirrorFile{}, nil, fmt.Errorf("reading %s: %w", name, err)
	}
	ver, err := v.Finish()
	if err != nil {
		return manifest.MirrorFile{}, nil, err
	}
	if err := js.end(); err != nil {
		return manifest.MirrorFile{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	c.e.Files = append(c.e.Files, File{Rel: rel, Abs: name, Size: ver.Size, SHA256: ver.SHA256})
	var gen *time.Time
	if s, present, ok := js.generatedAt(); present && format == "json" {
		if !ok {
			return manifest.MirrorFile{}, nil, fmt.Errorf("%s: generatedAt: not a time string: %w", name, errdef.ErrInvalid)
		}
		if gen, err = parseTime(name+": generatedAt", s); err != nil {
			return manifest.MirrorFile{}, nil, err
		}
	}
	return manifest.MirrorFile{
		Domain: d, Path: c.e.KitPath(rel), SHA256: ver.SHA256, Size: ver.Size,
		Signature: &manifest.MirrorSignature{Path: c.e.KitPath(rel + ".jws"), Kind: ver.Kind, KeyID: ver.KeyID, Alg: ver.Alg},
	}, gen, nil
}

func parseTime(field, s string) (*time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: not an RFC 3339 time: %w", field, s, errdef.ErrInvalid)
	}
	t = t.UTC().Truncate(time.Second)
	return &t, nil
}

func later(a, b *time.Time) *time.Time {
	if a == nil || b.After(*a) {
		return b
	}
	return a
}
