package plainfile

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"golang.org/x/sys/unix"
)

func TestOpenRegularFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("offkit"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A symlink is followed, as kit build's "symlinks: follow" needs.
	link := filepath.Join(dir, "link")
	if err := os.Symlink("f", link); err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{name, link} {
		f, fi, err := OpenRegular(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name() != p {
			t.Errorf("Name() = %q, want %q", f.Name(), p)
		}
		if fi.Name() != filepath.Base(p) || fi.Size() != 6 || fi.Mode() != want.Mode() || !fi.ModTime().Equal(want.ModTime()) || fi.IsDir() {
			t.Errorf("%s: FileInfo %q %d %v %v, os.Stat says %q %d %v %v", p, fi.Name(), fi.Size(), fi.Mode(), fi.ModTime(), want.Name(), want.Size(), want.Mode(), want.ModTime())
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Ino != want.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("%s: Sys() = %#v, not the file's *syscall.Stat_t", p, fi.Sys())
		}
		// The descriptor is left blocking, as os.Open's.
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			t.Errorf("%s: flags %#x, %v: O_NONBLOCK left set", p, flags, err)
		}
		b, err := io.ReadAll(f)
		if err != nil || string(b) != "offkit" {
			t.Errorf("%s: read %q, %v", p, b, err)
		}
		if _, err := f.Write([]byte("x")); err == nil {
			t.Errorf("%s: a file opened for reading took a write", p)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// wantNotRegular checks err is the refusal of path as a kind of file.
func wantNotRegular(t *testing.T, err error, path, kind string) {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "open" || pe.Path != path {
		t.Fatalf("%s: error %#v, want an *fs.PathError naming it", path, err)
	}
	if !errors.Is(err, errdef.ErrInvalid) || errdef.ExitCode(err) != errdef.ExitInvalid {
		t.Errorf("%s: error %q does not wrap errdef.ErrInvalid", path, err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), kind) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("%s: error %q does not say it is a %s, not a regular file", path, err, kind)
	}
}

func TestOpenRegularRefusesNamedPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("fifo", link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link} {
		done := fifotest.Guard(t, fifo)
		f, fi, err := OpenRegular(p)
		done()
		if err == nil {
			f.Close()
		}
		if f != nil || fi != nil {
			t.Errorf("%s: a file or FileInfo returned with the error", p)
		}
		wantNotRegular(t, err, p, "named pipe")
	}
}

func TestOpenRegularRefusesOtherTypes(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct{ path, kind string }{
		{dir, "folder"},
		{"/dev/null", "character device"},
		{sock, "not a regular file"},
	} {
		f, _, err := OpenRegular(c.path)
		if err == nil {
			f.Close()
		}
		wantNotRegular(t, err, c.path, c.kind)
	}
}

func TestOpenRegularMissing(t *testing.T) {
	name := filepath.Join(t.TempDir(), "missing")
	_, _, err := OpenRegular(name)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "open" || pe.Path != name || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %#v", err)
	}
	if errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("missing file: %q wraps errdef.ErrInvalid", err)
	}
	if _, want := os.Open(name); err.Error() != want.Error() {
		t.Errorf("error %q, os.Open says %q", err, want)
	}
}

func TestOpenRegularIn(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"gen/f": "offkit", "outside": "no"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(gen, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(gen, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(gen, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(gen, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root, err := os.OpenRoot(gen)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	for _, name := range []string{"f", "link"} {
		f, fi, err := OpenRegularIn(root, name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		if err != nil || string(b) != "offkit" || fi.Size() != 6 || !fi.Mode().IsRegular() {
			t.Errorf("%s: read %q, %v; FileInfo %d %v", name, b, err, fi.Size(), fi.Mode())
		}
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			t.Errorf("%s: flags %#x, %v: O_NONBLOCK left set", name, flags, err)
		}
		f.Close()
	}

	done := fifotest.Guard(t, filepath.Join(gen, "fifo"))
	f, _, err := OpenRegularIn(root, "fifo")
	done()
	if err == nil {
		f.Close()
	}
	wantNotRegular(t, err, "fifo", "named pipe")
	_, _, err = OpenRegularIn(root, "sub")
	wantNotRegular(t, err, "sub", "folder")
	_, _, err = OpenRegularIn(root, "sock")
	wantNotRegular(t, err, "sock", "not a regular file")

	if _, _, err := OpenRegularIn(root, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if f, _, err := OpenRegularIn(root, "../outside"); err == nil {
		f.Close()
		t.Error("a file outside the root was opened")
	}
}
