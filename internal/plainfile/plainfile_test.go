package plainfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("offkit"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "offkit" {
		t.Fatalf("read %q, %v", b, err)
	}
	if f.Name() != name {
		t.Errorf("Name() = %q", f.Name())
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("a file opened for reading took a write")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The errors os.Open gives: a *PathError naming the file, matching the
	// fs sentinels.
	_, err = Open(filepath.Join(dir, "missing"))
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "open" || pe.Path != filepath.Join(dir, "missing") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %#v", err)
	}
	_, want := os.Open(filepath.Join(dir, "missing"))
	if err.Error() != want.Error() {
		t.Errorf("error %q, os.Open says %q", err, want)
	}
}
