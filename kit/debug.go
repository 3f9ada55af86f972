package kit

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
)

// The debug manifest's names, kept here for the builder's callers
// (package debugstore defines them, for verify to check without kit).
const (
	DebugManifestPath    = debugstore.ManifestPath
	FormatELFDebug       = debugstore.FormatELFDebug
	FormatELFExecutable  = debugstore.FormatELFExecutable
	MaxDebugManifestSize = debugstore.MaxManifestSize
)

// DebugManifest is debug/debug-manifest.json (docs/debug.md).
type DebugManifest = debugstore.Manifest

// DebugFileEntry is one file of a kit's .build-id store.
type DebugFileEntry = debugstore.FileEntry

// EncodeDebugManifest is debugstore.EncodeManifest.
func EncodeDebugManifest(dm *DebugManifest) ([]byte, error) { return debugstore.EncodeManifest(dm) }

// CheckDebugManifest is debugstore.CheckManifest (verify calls it).
func CheckDebugManifest(m *manifest.Manifest, b []byte) error { return debugstore.CheckManifest(m, b) }

// debugStore is what the kinded debug sources of a spec give: the files
// (and the debug manifest, packed from memory) to pack, and the kit
// manifest's debug[].
type debugStore struct {
	srcs  []source
	list  []manifest.Debug
	entry map[string]debugOrigin // by kit path
}

type debugOrigin struct {
	DebugFileEntry
	abs, field string
	shown      string // abs, or where in an image it comes from
}

// inImage is where a file of a debug source of kind image comes from.
type inImage struct {
	ref, digest, path string
	debugInfo, listed bool
	bid               *debugstore.BuildID // as the scan read it
}

// collectDebug reads the debug sources that have a kind (those without are
// copied as trees by collectFiles): each file's GNU build id names it in
// debug/.build-id, the same id with other bytes is refused naming both
// sources, a file without a GNU build id is refused, and a .build-id tree's
// file whose build id is not its name is refused.
func collectDebug(list []manifest.DebugSource, dir string, scan *imageScan) (*debugStore, error) {
	d := &debugStore{entry: map[string]debugOrigin{}}
	for i, ds := range list {
		if ds.Kind == "" {
			continue
		}
		field := fmt.Sprintf("spec /debug/%d", i)
		switch ds.Kind {
		case manifest.DebugKindFile, manifest.DebugKindBinary, manifest.DebugKindBuildIDTree, manifest.DebugKindImage:
		default:
			return nil, fmt.Errorf("%s/kind %q: not one of %s, %s, %s, %s: %w", field, ds.Kind,
				manifest.DebugKindFile, manifest.DebugKindBinary, manifest.DebugKindBuildIDTree, manifest.DebugKindImage, errdef.ErrInvalid)
		}
		if len(ds.Paths) > 0 && ds.Kind != manifest.DebugKindImage {
			return nil, fmt.Errorf("%s/paths: only a %s source has paths: %w", field, manifest.DebugKindImage, errdef.ErrInvalid)
		}
		if ds.Dest != "" {
			return nil, fmt.Errorf("%s/dest: a %s source is stored by build id under debug/.build-id; dest is for sources without a kind: %w", field, ds.Kind, errdef.ErrInvalid)
		}
		if ds.Executable && ds.Kind != manifest.DebugKindBinary {
			return nil, fmt.Errorf("%s/executable: only a %s source has an executable to store: %w", field, manifest.DebugKindBinary, errdef.ErrInvalid)
		}
		if len(ds.Component) > 255 {
			return nil, fmt.Errorf("%s/component: %d bytes, over 255: %w", field, len(ds.Component), errdef.ErrInvalid)
		}
		if ds.Kind == manifest.DebugKindImage {
			if err := scan.add(d, ds, field); err != nil {
				return nil, err
			}
			continue
		}
		src := ds.Src
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		if ds.Kind == manifest.DebugKindBuildIDTree && filepath.Base(filepath.Clean(src)) != ".build-id" {
			src = filepath.Join(src, ".build-id")
		}
		files, err := walkSource(src, ds.Symlinks)
		if err != nil {
			return nil, fmt.Errorf("%s/src %q: %s: %w", field, ds.Src, src, err)
		}
		for _, f := range files {
			if err := d.add(ds, field, f, nil); err != nil {
				return nil, err
			}
		}
	}
	if len(d.entry) == 0 {
		return d, nil
	}
	return d, d.finish()
}

// add reads one file of source ds and records it under its build id;
// img says where in an image it comes from (source kind image; f.abs is
// then a copy of it).
func (d *debugStore) add(ds manifest.DebugSource, field string, f walked, img *inImage) error {
	shown := f.abs
	if img != nil {
		shown = fmt.Sprintf("image %s (%s): /%s", img.ref, img.digest, img.path)
	}
	// Opened without waiting: a file swapped for a named pipe since it
	// was listed is refused, not waited on.
	fh, st, err := plainfile.OpenRegular(f.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %s: %w", field, shown, errdef.ErrNotFound)
		}
		return fmt.Errorf("%s: %w", field, err)
	}
	defer fh.Close()
	var bid debugstore.BuildID
	if img != nil && img.bid != nil {
		bid = *img.bid // the image scan read it from this copy
	} else if bid, err = debugstore.ReadBuildID(fh, st.Size()); err != nil {
		return fmt.Errorf("%s: %s: %w", field, shown, err)
	}
	if bid.GNU == "" {
		return fmt.Errorf("%s: %s has no GNU build id note (link it with -Wl,--build-id), so it cannot be named in a .build-id tree: %w", field, shown, errdef.ErrInvalid)
	}
	id, err := debugstore.ParseID(bid.GNU)
	if err != nil {
		return fmt.Errorf("%s: %s: build id %s cannot be looked up (8 to 64 bytes): %w", field, shown, bid.GNU, errdef.ErrInvalid)
	}
	h := sha256.New()
	win := debugstore.NewWindow(st.Size())
	n, err := io.Copy(io.MultiWriter(h, win), io.NewSectionReader(fh, 0, st.Size()+1))
	if err != nil && !errors.Is(err, errdef.ErrInvalid) {
		return fmt.Errorf("%s: reading %s: %w", field, shown, err)
	}
	if err != nil || n != st.Size() {
		return fmt.Errorf("%s: %s changed size while read (%d bytes, then more): %w", field, shown, st.Size(), errdef.ErrInvalid)
	}
	// Verify reads the build id from the bytes a Window keeps as the kit
	// streams: a file whose notes or tables lie elsewhere is refused here.
	if wid, err := debugstore.ReadGNUBuildID(win, n); err != nil || wid.GNU != id {
		if err == nil {
			err = fmt.Errorf("build id %q: %w", wid.GNU, errdef.ErrInvalid)
		}
		return fmt.Errorf("%s: %s: build id %s is not read the same from its first %d and last %d bytes alone, which is what verify reads: %w",
			field, shown, id, debugstore.WindowHead, debugstore.WindowTail, err)
	}
	base := DebugFileEntry{BuildID: id, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n,
		Arch: elfArch(bid), Component: ds.Component, SourceKind: string(ds.Kind)}
	rel := ".build-id/" + id[:2] + "/" + id[2:]
	formats := []string{FormatELFDebug}
	if ds.Executable {
		formats = append(formats, FormatELFExecutable)
	}
	if img != nil {
		base.ImageDigest, base.ImagePath = img.digest, "/"+img.path
		formats = nil
		if img.debugInfo {
			formats = append(formats, FormatELFDebug)
		}
		if img.listed {
			formats = append(formats, FormatELFExecutable)
		}
	}
	if ds.Kind == manifest.DebugKindBuildIDTree {
		named, format := filepath.ToSlash(f.rel), FormatELFExecutable
		if n, ok := strings.CutSuffix(named, ".debug"); ok {
			named, format = n, FormatELFDebug
		}
		if named != id[:2]+"/"+id[2:] {
			aa, rest, _ := strings.Cut(named, "/")
			if _, err := debugstore.ParseID(aa + rest); err != nil || len(aa) != 2 || strings.Contains(rest, "/") {
				return fmt.Errorf("%s: %s: not <aa>/<rest>.debug or <aa>/<rest> in a .build-id tree: %w", field, shown, errdef.ErrInvalid)
			}
			return fmt.Errorf("%s: %s is named for build id %s, but its build id is %s: %w", field, shown, aa+rest, id, errdef.ErrInvalid)
		}
		formats = []string{format}
	}
	for _, format := range formats {
		e := base
		e.Format, e.File = format, rel
		if format == FormatELFDebug {
			e.File += ".debug"
		}
		kp := "debug/" + e.File
		if prev, ok := d.entry[kp]; ok {
			if prev.SHA256 != e.SHA256 {
				return fmt.Errorf("%s: %s has build id %s, as %s (%s) does, but other bytes (sha256 %s, %d bytes; %s, %d bytes): %w",
					field, shown, id, prev.shown, prev.field, e.SHA256, e.Size, prev.SHA256, prev.Size, errdef.ErrInvalid)
			}
			continue // one file, named twice
		}
		d.entry[kp] = debugOrigin{DebugFileEntry: e, abs: f.abs, shown: shown, field: field}
	}
	return nil
}

// finish writes the debug manifest and lists the sources and debug[].
func (d *debugStore) finish() error {
	var dm DebugManifest
	dm.SchemaVersion = 1
	for _, o := range d.entry {
		dm.Files = append(dm.Files, o.DebugFileEntry)
	}
	sort.Slice(dm.Files, func(i, j int) bool {
		a, b := dm.Files[i], dm.Files[j]
		if a.BuildID != b.BuildID {
			return a.BuildID < b.BuildID
		}
		return a.File < b.File
	})
	for _, e := range dm.Files {
		kp := "debug/" + e.File
		d.srcs = append(d.srcs, source{entry: manifest.Entry{Path: kp, Role: manifest.RoleDebug, Size: e.Size, SHA256: e.SHA256}, file: d.entry[kp].abs})
		d.list = append(d.list, manifest.Debug{BuildID: e.BuildID, Path: kp, Arch: e.Arch, Image: e.ImageDigest, ImagePath: e.ImagePath, Component: e.Component})
	}
	b, err := EncodeDebugManifest(&dm)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	d.srcs = append(d.srcs, source{entry: manifest.Entry{Path: DebugManifestPath, Role: manifest.RoleDebug,
		Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, file: "offkit's " + DebugManifestPath, data: b})
	return nil
}

// elfArch names an ELF machine as GOARCH does, where it can.
func elfArch(b debugstore.BuildID) string {
	switch b.Machine {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_386:
		return "386"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_PPC64:
		if b.ByteOrder == "little" {
			return "ppc64le"
		}
		return "ppc64"
	case elf.EM_S390:
		return "s390x"
	case elf.EM_RISCV:
		if b.Class == 64 {
			return "riscv64"
		}
		return "riscv"
	case elf.EM_LOONGARCH:
		return "loong64"
	case elf.EM_MIPS:
		if b.Class == 64 {
			return "mips64"
		}
		return "mips"
	}
	return strings.ToLower(strings.TrimPrefix(b.Machine.String(), "EM_"))
}

// field is the spec field kit path kp came from ("" for the manifest).
func (d *debugStore) field(kp string) string {
	if o, ok := d.entry[kp]; ok {
		return o.field
	}
	return "spec /debug"
}
