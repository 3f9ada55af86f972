package site

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// Debug stores of several kits share one .build-id tree in a generation
// (docs/site.md, "Debug stores of several kits"):
//
//   - each kit's debug/debug-manifest.json is kept as the kit's metadata,
//     .offkit/kits/NAME/debug-manifest.json, not at its kit path: every kit
//     with a debug store carries one;
//   - a file debug/.build-id/<aa>/<rest>[.debug] that two kits carry with the
//     same bytes (sha256 and size) is one file of the generation, linked
//     once; with other bytes the second kit is refused.

// debugManifestFile is the name of a kit's debug manifest in its metadata
// folder .offkit/kits/NAME/.
const debugManifestFile = "debug-manifest.json"

// DebugManifestPath is where the debug manifest of kit is in a generation:
// .offkit/kits/NAME/debug-manifest.json (slash-separated, relative to the
// generation folder).
func DebugManifestPath(kit string) string { return path.Join(metaDir, "kits", kit, debugManifestFile) }

// genPath is where kit's entry p is in a generation tree: its kit path,
// except for the debug manifest.
func genPath(kit, p string) string {
	if p == debugstore.ManifestPath {
		return DebugManifestPath(kit)
	}
	return p
}

// sharedDebug reports whether kit path p is a file of the .build-id store
// (debug/.build-id/<aa>/<rest>.debug or …/<aa>/<rest>, named for a build
// id), which kits may share when their bytes are the same.
func sharedDebug(p string) bool {
	id, ok := debugstore.StoredID(p)
	return ok && (p == debugstore.DebugPath(id) || p == debugstore.ExecutablePath(id))
}

// checkSharedDebug decides a path kit m's entry e shares with another
// kit's entry c: the same .build-id file with the same bytes is allowed
// (true, nil); other bytes are refused naming both kits; any other path is
// not decided here (false, nil).
func checkSharedDebug(m *manifest.Manifest, e manifest.Entry, c claim) (bool, error) {
	if c.path != e.Path || !sharedDebug(e.Path) {
		return false, nil
	}
	if c.sha256 == e.SHA256 && c.size == e.Size {
		return true, nil
	}
	id, _ := debugstore.StoredID(e.Path)
	return true, fmt.Errorf("kit %s: entry %q: build id %s: kit %s carries this file with other bytes (sha256 %s, %d bytes; kit %s: sha256 %s, %d bytes): %w",
		m.Name, e.Path, id, c.kit, c.sha256, c.size, m.Name, e.SHA256, e.Size, errdef.ErrInvalid)
}

// carryEntry links other kit k's entry e from generation folder from into
// the new tree. A .build-id file already there was linked by a kit that
// shares it (checkPaths made sure the bytes are the same). The debug
// manifest is carried with the kit's metadata; a generation made before
// it was kept there has it at its kit path, and it is moved into the
// metadata.
func carryEntry(from, tree, kit string, e manifest.Entry) error {
	dst := filepath.Join(tree, filepath.FromSlash(genPath(kit, e.Path)))
	if e.Path == debugstore.ManifestPath {
		if _, err := os.Lstat(dst); err == nil {
			return nil // copied with .offkit/kits/NAME
		}
	}
	src := entryFile(from, kit, e.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("carrying %s of kit %s into the new generation: %w", e.Path, kit, err)
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) && sharedDebug(e.Path) {
			return nil
		}
		return fmt.Errorf("carrying %s of kit %s into the new generation: %w", e.Path, kit, err)
	}
	return nil
}

// placeDebugManifest moves the staged kit's debug manifest from its kit
// path in the tree to the kit's metadata folder kdir.
func placeDebugManifest(tree, kdir string, m *manifest.Manifest) error {
	for _, e := range m.Entries {
		if e.Path != debugstore.ManifestPath {
			continue
		}
		src := filepath.Join(tree, filepath.FromSlash(e.Path))
		if err := os.Rename(src, filepath.Join(kdir, debugManifestFile)); err != nil {
			return fmt.Errorf("kit %s: %s: %w", m.Name, e.Path, err)
		}
		// Leave no empty debug/ behind for a kit whose store is only the
		// manifest.
		os.Remove(filepath.Dir(src))
	}
	return nil
}

// entryFile is the file of kit's tree entry p in the generation folder
// gdir, for checks: the debug manifest in the metadata, or at its kit path
// in a generation made before it was kept there.
func entryFile(gdir, kit, p string) string {
	f := filepath.Join(gdir, filepath.FromSlash(genPath(kit, p)))
	if p == debugstore.ManifestPath {
		if _, err := os.Lstat(f); errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(gdir, filepath.FromSlash(p))
		}
	}
	return f
}
