package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTree writes a sorted tree deeper and wider than the folders a Tree
// keeps open, and checks every file, its mode, and the refusals WriteNew
// makes: no replacing, no name outside root, no way out through a link.
func TestTree(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tr := NewTree(root)
	defer tr.Close()
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("tree/a/%02d.txt", i), fmt.Sprintf("tree/a/%02d/b/c/f", i))
	}
	names = append(names, "tree/a.txt", "tree/z/y/x/w/v/u/t/s/r/q/p")
	for _, n := range names {
		if err := tr.WriteNew(n, strings.NewReader("data of "+n)); err != nil {
			t.Fatalf("WriteNew(%s): %v", n, err)
		}
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || string(got) != "data of "+n {
			t.Errorf("%s = %q, %v", n, got, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %v, %v", n, fi.Mode(), err)
		}
	}
	// Again, in a folder still open and in one closed since.
	for _, n := range []string{"tree/z/y/x/w/v/u/t/s/r/q/p", "tree/a/00.txt"} {
		if err := tr.WriteNew(n, strings.NewReader("other")); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteNew(%s) over a file = %v, want ErrExist", n, err)
		}
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "tree", "out")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"../escape", "tree/../../escape", "tree/out/f", "tree/out/sub/f"} {
		if err := tr.WriteNew(n, strings.NewReader("x")); err == nil {
			t.Errorf("WriteNew(%s) wrote outside root", n)
		}
	}
}
