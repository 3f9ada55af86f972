package plainfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/fifotest"
)

// TestOpenRegularNoFollowIn: a regular file of the root is opened and
// read; a symlink to it, a named pipe (at once) and a folder are refused
// as invalid, naming the name and what is there; a missing file is not
// found.
func TestOpenRegularNoFollowIn(t *testing.T) {
	gen := t.TempDir()
	if err := os.WriteFile(filepath.Join(gen, "f"), []byte("offkit"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(gen, "link")); err != nil {
		t.Fatal(err)
	}
	fifotest.Replace(t, filepath.Join(gen, "fifo"))
	if err := os.Mkdir(filepath.Join(gen, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(gen)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	f, fi, err := OpenRegularNoFollowIn(root, "f")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(b) != "offkit" || fi.Size() != 6 {
		t.Errorf("f: read %q, %v; size %d", b, err, fi.Size())
	}
	for name, kind := range map[string]string{"link": "symlink", "fifo": "named pipe", "sub": "folder"} {
		done := fifotest.Guard(t, filepath.Join(gen, name))
		f, _, err := OpenRegularNoFollowIn(root, name)
		done()
		if err == nil {
			f.Close()
		}
		wantNotRegular(t, err, name, kind)
	}
	if _, _, err := OpenRegularNoFollowIn(root, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
