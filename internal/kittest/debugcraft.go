package kittest

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/elfgen"
	"github.com/offkit/offkit/manifest"
)

// DebugELF is a small ELF file whose GNU build id is id (hex), with a
// filler section of filler bytes (internal/elfgen).
func DebugELF(t testing.TB, id string, filler int64) []byte {
	t.Helper()
	b, err := hex.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	return elfgen.Bytes(elfgen.Options{BuildID: b, Filler: filler})
}

// DebugCraft is a hand-made kit with a .build-id store, signed by Key so
// that only its content is hostile.
type DebugCraft struct {
	Key *Key
	// Files are the kit's debug/ files (kit path → content); each whose
	// path is a .build-id tree's is listed in debug[] and in the debug
	// manifest under the id its path names, whatever its bytes are.
	Files map[string][]byte
	// NoDebugManifest leaves debug/debug-manifest.json out of the kit.
	NoDebugManifest bool
	// EditDebugManifest, when set, changes the debug manifest before it
	// is encoded (a file not carried, …).
	EditDebugManifest func(dm *debugstore.Manifest)
	// DebugManifestBytes, when set, is the debug manifest entry's bytes.
	DebugManifestBytes []byte
	// NoDebugList leaves the manifest's debug[] empty.
	NoDebugList bool
	// EditDebugList, when set, changes the manifest's debug[].
	EditDebugList func([]manifest.Debug) []manifest.Debug
	// Extra are further content entries (path → content).
	Extra map[string][]byte
}

// Write writes the kit to dir/hostile-1.0.0.kit.tar.zst and returns its
// path.
func (c *DebugCraft) Write(t testing.TB, dir string) string {
	t.Helper()
	var dm debugstore.Manifest
	dm.SchemaVersion = 1
	var paths []string
	for p := range c.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	files := map[string][]byte{}
	for _, p := range paths {
		b := c.Files[p]
		files[p] = b
		id, ok := debugstore.StoredID(p)
		if !ok || !strings.HasPrefix(p, "debug/.build-id/") {
			continue
		}
		sum := sha256.Sum256(b)
		f := debugstore.FileEntry{BuildID: id, File: strings.TrimPrefix(p, "debug/"), SHA256: hex.EncodeToString(sum[:]),
			Size: int64(len(b)), Arch: "amd64", Format: debugstore.FormatELFExecutable, SourceKind: "build-id-tree"}
		if strings.HasSuffix(p, ".debug") {
			f.Format = debugstore.FormatELFDebug
		}
		dm.Files = append(dm.Files, f)
	}
	sort.Slice(dm.Files, func(i, j int) bool {
		if dm.Files[i].BuildID != dm.Files[j].BuildID {
			return dm.Files[i].BuildID < dm.Files[j].BuildID
		}
		return dm.Files[i].File < dm.Files[j].File
	})
	var list []manifest.Debug
	for _, f := range dm.Files {
		list = append(list, manifest.Debug{BuildID: f.BuildID, Path: "debug/" + f.File, Arch: f.Arch})
	}
	if c.EditDebugManifest != nil {
		c.EditDebugManifest(&dm)
	}
	if !c.NoDebugManifest {
		b := c.DebugManifestBytes
		if b == nil {
			var err error
			if b, err = debugstore.EncodeManifest(&dm); err != nil {
				t.Fatal(err)
			}
		}
		files[debugstore.ManifestPath] = b
	}
	for p, b := range c.Extra {
		files[p] = b
	}
	paths = paths[:0]
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var content []Entry
	for _, p := range paths {
		content = append(content, File(p, files[p]))
	}
	m := ManifestFor(content)
	for i := range m.Entries {
		m.Entries[i].Role = RoleOf(m.Entries[i].Path)
	}
	if !c.NoDebugList {
		m.Debug = list
	}
	if c.EditDebugList != nil {
		m.Debug = c.EditDebugList(m.Debug)
	}
	// The tar carries entries in manifest order.
	byPath := map[string]Entry{}
	for _, e := range content {
		byPath[e.Header.Name] = e
	}
	content = content[:0]
	for _, e := range m.Entries {
		content = append(content, byPath[e.Path])
	}
	return (&Craft{Content: content, Manifest: m, Key: c.Key}).Write(t, filepath.Join(dir, "hostile-1.0.0.kit.tar.zst"))
}
