// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the new, never a part: temp file in the same folder,
// fsync, rename, fsync of the folder.
package atomicfile

import (
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/offkit/offkit/internal/copybuf"
)

// WriteFile replaces path with data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what fill writes, streamed into the temporary
// file; path is left as it was when fill (or anything after it) fails.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a folder, making renames in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteNew writes a new read-only (0444) file name, read from r, inside
// root, creating its parent folders. It never replaces anything (O_EXCL), and
// root confines the name. It is for staging trees: a failure may leave a
// partial file, which the caller's clean-up of the whole tree removes.
func WriteNew(root *os.Root, name string, r io.Reader) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	return create(root, name, r)
}

// create writes the new read-only (0444) file name inside dir, read from r,
// never replacing anything (O_EXCL).
func create(dir *os.Root, name string, r io.Reader) error {
	f, err := dir.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	if _, err := copybuf.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
