package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The committed example exports are exactly what mkmirror writes: files,
// links and bytes.
func TestCommittedFixture(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mirror")
	if err := Write(out, "testkeys"); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "mirror")
	list := func(root string) map[string]string {
		m := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.Type()&fs.ModeSymlink != 0 {
				l, _ := os.Readlink(p)
				m[rel] = "-> " + l
				return nil
			}
			b, err := os.ReadFile(p)
			m[rel] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	got, want := list(out), list(committed)
	for p, w := range want {
		if g, ok := got[p]; !ok || !bytes.Equal([]byte(g), []byte(w)) {
			t.Errorf("%s: committed file differs from mkmirror's output (run go run ./examples/zastava-runtime/mkmirror)", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: written by mkmirror but not committed", p)
		}
	}
}
