package debugstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// ManifestPath is the kit path of the debug manifest.
const ManifestPath = "debug/debug-manifest.json"

// The formats a debug manifest records.
const (
	FormatELFDebug      = "elf-debug"      // <aa>/<rest>.debug
	FormatELFExecutable = "elf-executable" // <aa>/<rest>
)

// Manifest is debug/debug-manifest.json (docs/debug.md).
type Manifest struct {
	SchemaVersion int         `json:"schemaVersion"`
	Files         []FileEntry `json:"files"`
}

// FileEntry is one file of a kit's .build-id store.
type FileEntry struct {
	BuildID string `json:"buildId"`
	// File is the path under debug/: .build-id/<aa>/<rest>[.debug].
	File        string `json:"file"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Arch        string `json:"arch"`
	Format      string `json:"format"`
	ImageDigest string `json:"imageDigest"`
	// ImagePath is the file's path inside the image (source kind image).
	ImagePath  string `json:"imagePath,omitempty"`
	Component  string `json:"component"`
	SourceKind string `json:"sourceKind"`
}

// EncodeManifest is the canonical form of a debug manifest: two-space
// indented JSON, no HTML escaping, a final newline.
func EncodeManifest(dm *Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(dm); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaxManifestSize bounds debug/debug-manifest.json when read back.
const MaxManifestSize = 64 << 20

// CheckManifest checks the bytes of a kit's debug/debug-manifest.json
// against its (verified) manifest m: canonical form, and the same files as
// m.Debug in the same order, each an entry of the kit with the size and
// SHA-256 the entry has. A debug manifest that lists a build id the kit does
// not carry is refused (errdef.ErrInvalid). verify.Kit calls it once the
// kit has streamed.
func CheckManifest(m *manifest.Manifest, b []byte) error {
	const name = ManifestPath
	if len(b) > MaxManifestSize {
		return fmt.Errorf("%s: %d bytes, over %d: %w", name, len(b), MaxManifestSize, errdef.ErrInvalid)
	}
	var dm Manifest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&dm); err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, errdef.ErrInvalid)
	}
	if again, err := EncodeManifest(&dm); err != nil || !bytes.Equal(again, b) {
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
		if want := (manifest.Debug{BuildID: f.BuildID, Path: kp, Arch: f.Arch, Image: f.ImageDigest, ImagePath: f.ImagePath, Component: f.Component}); m.Debug[i] != want {
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
