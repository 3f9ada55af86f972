package kit

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// DebugManifestPath is the kit path of the debug manifest.
const DebugManifestPath = "debug/debug-manifest.json"

// The formats a debug manifest records.
const (
	FormatELFDebug      = "elf-debug"      // <aa>/<rest>.debug
	FormatELFExecutable = "elf-executable" // <aa>/<rest>
)

// DebugManifest is debug/debug-manifest.json (docs/debug.md).
type DebugManifest struct {
	SchemaVersion int              `json:"schemaVersion"`
	Files         []DebugFileEntry `json:"files"`
}

// DebugFileEntry is one file of a kit's .build-id store.
type DebugFileEntry struct {
	BuildID string `json:"buildId"`
	// File is the path under debug/: .build-id/<aa>/<rest>[.debug].
	File        string `json:"file"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Arch        string `json:"arch"`
	Format      string `json:"format"`
	ImageDigest string `json:"imageDigest"`
	Component   string `json:"component"`
	SourceKind  string `json:"sourceKind"`
}

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
}

// collectDebug reads the debug sources that have a kind (those without are
// copied as trees by collectFiles): each file's GNU build id names it in
// debug/.build-id, the same id with other bytes is refused naming both
// sources, a file without a GNU build id is refused, and a .build-id tree's
// file whose build id is not its name is refused.
func collectDebug(list []manifest.DebugSource, dir string) (*debugStore, error) {
	d := &debugStore{entry: map[string]debugOrigin{}}
	for i, ds := range list {
		if ds.Kind == "" {
			continue
		}
		field := fmt.Sprintf("spec /debug/%d", i)
		switch ds.Kind {
		case manifest.DebugKindFile, manifest.DebugKindBinary, manifest.DebugKindBuildIDTree:
		default:
			return nil, fmt.Errorf("%s/kind %q: not one of %s, %s, %s: %w", field, ds.Kind,
				manifest.DebugKindFile, manifest.DebugKindBinary, manifest.DebugKindBuildIDTree, errdef.ErrInvalid)
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
			if err := d.add(ds, field, f); err != nil {
				return nil, err
			}
		}
	}
	if len(d.entry) == 0 {
		return d, nil
	}
	return d, d.finish()
}

// add reads one file of source ds and records it under its build id.
func (d *debugStore) add(ds manifest.DebugSource, field string, f walked) error {
	fh, err := os.Open(f.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %s: %w", field, f.abs, errdef.ErrNotFound)
		}
		return fmt.Errorf("%s: %w", field, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	bid, err := debugstore.ReadBuildID(fh, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %s: %w", field, f.abs, err)
	}
	if bid.GNU == "" {
		return fmt.Errorf("%s: %s has no GNU build id note (link it with -Wl,--build-id), so it cannot be named in a .build-id tree: %w", field, f.abs, errdef.ErrInvalid)
	}
	id, err := debugstore.ParseID(bid.GNU)
	if err != nil {
		return fmt.Errorf("%s: %s: build id %s cannot be looked up (8 to 64 bytes): %w", field, f.abs, bid.GNU, errdef.ErrInvalid)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(fh, 0, st.Size()+1))
	if err != nil {
		return fmt.Errorf("%s: reading %s: %w", field, f.abs, err)
	}
	if n != st.Size() {
		return fmt.Errorf("%s: %s changed size while read (%d, then %d bytes): %w", field, f.abs, st.Size(), n, errdef.ErrInvalid)
	}
	base := DebugFileEntry{BuildID: id, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n,
		Arch: elfArch(bid), Component: ds.Component, SourceKind: string(ds.Kind)}
	rel := ".build-id/" + id[:2] + "/" + id[2:]
	formats := []string{FormatELFDebug}
	if ds.Executable {
		formats = append(formats, FormatELFExecutable)
	}
	if ds.Kind == manifest.DebugKindBuildIDTree {
		named, format := filepath.ToSlash(f.rel), FormatELFExecutable
		if n, ok := strings.CutSuffix(named, ".debug"); ok {
			named, format = n, FormatELFDebug
		}
		if named != id[:2]+"/"+id[2:] {
			aa, rest, _ := strings.Cut(named, "/")
			if _, err := debugstore.ParseID(aa + rest); err != nil || len(aa) != 2 || strings.Contains(rest, "/") {
				return fmt.Errorf("%s: %s: not <aa>/<rest>.debug or <aa>/<rest> in a .build-id tree: %w", field, f.abs, errdef.ErrInvalid)
			}
			return fmt.Errorf("%s: %s is named for build id %s, but its build id is %s: %w", field, f.abs, aa+rest, id, errdef.ErrInvalid)
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
					field, f.abs, id, prev.abs, prev.field, e.SHA256, e.Size, prev.SHA256, prev.Size, errdef.ErrInvalid)
			}
			continue // one file, named twice
		}
		d.entry[kp] = debugOrigin{DebugFileEntry: e, abs: f.abs, field: field}
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
		d.list = append(d.list, manifest.Debug{BuildID: e.BuildID, Path: kp, Arch: e.Arch, Component: e.Component})
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

// EncodeDebugManifest is the canonical form of a debug manifest: two-space
// indented JSON, no HTML escaping, a final newline.
func EncodeDebugManifest(dm *DebugManifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(dm); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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

// MaxDebugManifestSize bounds debug/debug-manifest.json when read back.
const MaxDebugManifestSize = 64 << 20

// CheckDebugManifest checks the bytes of a kit's debug/debug-manifest.json
// against its (verified) manifest m: canonical form, and the same files as
// m.Debug in the same order, each an entry of the kit with the size and
// SHA-256 the entry has. A debug manifest that lists a build id the kit does
// not carry is refused (errdef.ErrInvalid). Verify does not call it yet.
func CheckDebugManifest(m *manifest.Manifest, b []byte) error {
	const name = DebugManifestPath
	if len(b) > MaxDebugManifestSize {
		return fmt.Errorf("%s: %d bytes, over %d: %w", name, len(b), MaxDebugManifestSize, errdef.ErrInvalid)
	}
	var dm DebugManifest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&dm); err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, errdef.ErrInvalid)
	}
	if again, err := EncodeDebugManifest(&dm); err != nil || !bytes.Equal(again, b) {
		return fmt.Errorf("%s: not in canonical form: %w", name, errdef.ErrInvalid)
	}
	if dm.SchemaVersion != 1 {
		return fmt.Errorf("%s: schemaVersion %d, this offkit reads 1: %w", name, dm.SchemaVersion, errdef.ErrInvalid)
	}
	entries := make(map[string]manifest.Entry, len(m.Entries))
	for _, e := range m.Entries {
		entries[e.Path] = e
	}
	for i, f := range dm.Files {
		field := fmt.Sprintf("%s files[%d] %q", name, i, f.BuildID)
		kp := "debug/" + f.File
		e, ok := entries[kp]
		if !ok {
			return fmt.Errorf("%s: %s is not an entry of the kit: %w", field, kp, errdef.ErrInvalid)
		}
		if i >= len(m.Debug) {
			return fmt.Errorf("%s: not in the kit manifest's debug[] (%d files): %w", field, len(m.Debug), errdef.ErrInvalid)
		}
		if want := (manifest.Debug{BuildID: f.BuildID, Path: kp, Arch: f.Arch, Image: f.ImageDigest, Component: f.Component}); m.Debug[i] != want {
			return fmt.Errorf("%s: %+v, but the kit manifest's debug[%d] is %+v: %w", field, want, i, m.Debug[i], errdef.ErrInvalid)
		}
		if e.SHA256 != f.SHA256 || e.Size != f.Size {
			return fmt.Errorf("%s: sha256 %s, %d bytes, but the entry %s has sha256 %s, %d bytes: %w", field, f.SHA256, f.Size, kp, e.SHA256, e.Size, errdef.ErrInvalid)
		}
		want := FormatELFExecutable
		if strings.HasSuffix(f.File, ".debug") {
			want = FormatELFDebug
		}
		if f.Format != want {
			return fmt.Errorf("%s: format %q, but %s is %s: %w", field, f.Format, f.File, want, errdef.ErrInvalid)
		}
	}
	if len(dm.Files) != len(m.Debug) {
		return fmt.Errorf("%s: %d files, but the kit manifest's debug[] lists %d: %w", name, len(dm.Files), len(m.Debug), errdef.ErrInvalid)
	}
	return nil
}
