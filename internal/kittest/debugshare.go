package kittest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// DebugFilesKit builds kit name at version, signed by key, whose debug:
// source is a .build-id tree holding files (build id → the bytes of its
// .debug file, e.g. DebugELF): kit paths debug/.build-id/<aa>/<rest>.debug
// and debug/debug-manifest.json.
func DebugFilesKit(t testing.TB, key *Key, name, version string, files map[string][]byte) *kit.BuildResult {
	t.Helper()
	dir := t.TempDir()
	for id, b := range files {
		d := filepath.Join(dir, "symbols", ".build-id", id[:2])
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, id[2:]+".debug"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := &manifest.Spec{Name: name, Version: version, CreatedAt: &Created,
		Debug: []manifest.DebugSource{{Src: "symbols", Kind: manifest.DebugKindBuildIDTree, Component: name}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
