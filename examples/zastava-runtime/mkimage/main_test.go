package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/manifest"
)

func tree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteDeterministic(t *testing.T) {
	src := os.DirFS("../image")
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	da, err := Write(a, src)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Write(b, src)
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatalf("digests %s and %s differ", da, db)
	}
	// Writing again over an existing layout changes nothing.
	if _, err := Write(a, src); err != nil {
		t.Fatal(err)
	}
	ta, tb := tree(t, a), tree(t, b)
	if len(ta) != len(tb) {
		t.Errorf("%d files vs %d", len(ta), len(tb))
	}
	for p, x := range ta {
		if !bytes.Equal(x, tb[p]) {
			t.Errorf("%s differs", p)
		}
	}
	// index + 2 × (manifest + config + layer)
	if n := len(ta) - 2; n != 7 {
		t.Errorf("%d blobs, want 7", n)
	}

	var idx ocispec.Index
	if err := json.Unmarshal(ta["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != Ref ||
		idx.Manifests[0].Digest.String() != da.String() {
		t.Errorf("index.json = %s", ta["index.json"])
	}
}

func TestCollectable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "_image")
	d, err := Write(dir, os.DirFS("../image"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := images.Collect(context.Background(), []manifest.ImageSource{{Ref: Ref, Layout: dir}},
		filepath.Join(t.TempDir(), "images"), images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Digest != d.String() || !slices.Equal(got[0].Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("collected %+v", got[0])
	}
}
