package kittest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// ManyDebugKit builds kit "symbols" 1.0.0, signed by key, in frames of
// frameSize bytes, whose debug: source is a folder of n debug files made
// by DebugELF, file i of fill(i) bytes of noise with build id IDOf(i).
// It returns the kit and the files' contents by build id.
func ManyDebugKit(t testing.TB, key *Key, n int, fill func(i int) int64, frameSize int64) (*kit.BuildResult, map[string][]byte) {
	t.Helper()
	return ManyDebugKitAt(t, key, "1.0.0", n, fill, frameSize)
}

// ManyDebugKitAt is ManyDebugKit at version.
func ManyDebugKitAt(t testing.TB, key *Key, version string, n int, fill func(i int) int64, frameSize int64) (*kit.BuildResult, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := 0; i < n; i++ {
		id := IDOf(i)
		b := DebugELF(t, id, fill(i))
		files[id] = b
		if err := os.MkdirAll(filepath.Join(dir, "symbols"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "symbols", fmt.Sprintf("f%04d.debug", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := &manifest.Spec{Name: "symbols", Version: version, CreatedAt: &Created,
		Compression: &manifest.SpecCompress{FrameSize: frameSize},
		Debug:       []manifest.DebugSource{{Src: "symbols", Kind: manifest.DebugKindFile, Component: "many"}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, files
}

// IDOf is the 20-byte build id, in hex, of ManyDebugKit's file i.
func IDOf(i int) string { return fmt.Sprintf("%08x%032x", uint32(i)*2654435761, i) }
