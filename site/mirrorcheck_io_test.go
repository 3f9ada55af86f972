package site_test

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/site"
)

// failingGen is a generation whose file path fails op ("lstat", "open",
// "readlink", or "read": path is /proc/self/mem, for Lstat and open, whose
// read fails with EIO) with err.
type failingGen struct {
	*os.Root
	path, op string
	err      error
}

func (g failingGen) Lstat(name string) (fs.FileInfo, error) {
	if name == g.path && g.op == "lstat" {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: g.err}
	}
	if name == g.path && g.op == "read" {
		return os.Stat("/proc/self/mem")
	}
	return g.Root.Lstat(name)
}

func (g failingGen) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if name == g.path && g.op == "open" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: g.err}
	}
	if name == g.path && g.op == "read" {
		// Reading /proc/self/mem at offset 0, which no process maps, fails
		// with EIO.
		return os.OpenFile("/proc/self/mem", flag, perm)
	}
	return g.Root.OpenFile(name, flag, perm)
}

func (g failingGen) Readlink(name string) (string, error) {
	if name == g.path && g.op == "readlink" {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: g.err}
	}
	return g.Root.Readlink(name)
}

// A mirror file, signature file, link or folder that cannot be read
// (permission denied, I/O error) is exit 12 naming it, not a mismatch (2)
// or a bad signature (5): the check cannot say whether its bytes match. A
// missing file stays a mismatch.
func TestCheckMirrorUnreadable(t *testing.T) {
	root, keys, _ := signedSite(t)
	c1 := "mirror/concelier/20251121T000000Z/mirror/"
	c2 := "mirror/concelier/20251122T000000Z/mirror/"
	eioWorks := false
	if f, err := os.Open("/proc/self/mem"); err == nil {
		_, err = f.Read(make([]byte, 1))
		f.Close()
		eioWorks = errdef.ExitCode(err) == errdef.ExitIO
	}
	for _, c := range []struct {
		name     string
		gen      failingGen
		code     int
		contains string
	}{
		{"retained bundle, lstat EACCES", failingGen{path: c1 + "primary/bundle.json", op: "lstat", err: syscall.EACCES}, errdef.ExitIO, "permission denied"},
		{"active bundle, open EACCES", failingGen{path: c2 + "primary/bundle.json", op: "open", err: syscall.EACCES}, errdef.ExitIO, "permission denied"},
		{"active index, open EIO", failingGen{path: c2 + "index.json", op: "open", err: syscall.EIO}, errdef.ExitIO, "input/output error"},
		{"active bundle, read EIO", failingGen{path: c2 + "primary/bundle.json", op: "read"}, errdef.ExitIO, "input/output error"},
		{"signature file, open EACCES", failingGen{path: c1 + "primary/bundle.json.jws", op: "open", err: syscall.EACCES}, errdef.ExitIO, "permission denied"},
		{"signature file, read EIO", failingGen{path: c2 + "primary/bundle.json.jws", op: "read"}, errdef.ExitIO, "input/output error"},
		{"latest, readlink EACCES", failingGen{path: "mirror/concelier/latest", op: "readlink", err: syscall.EACCES}, errdef.ExitIO, "permission denied"},
		{"kind folder, open EACCES", failingGen{path: "mirror/excititor", op: "open", err: syscall.EACCES}, errdef.ExitIO, "permission denied"},
		{"active bundle missing", failingGen{path: c2 + "primary/bundle.json", op: "lstat", err: syscall.ENOENT}, errdef.ExitMismatch, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.gen.op == "read" && !eioWorks {
				t.Skip("reading /proc/self/mem does not fail here")
			}
			res, err := site.CheckMirrorThrough(context.Background(), site.NewView(root), keys, func(gen *os.Root) site.GenFiles {
				g := c.gen
				g.Root = gen
				return g
			})
			if err == nil {
				err = res.Err()
			}
			if got := errdef.ExitCode(err); got != c.code || !strings.Contains(err.Error(), c.gen.path) || !strings.Contains(err.Error(), c.contains) {
				t.Fatalf("exit %d, want %d: %v", got, c.code, err)
			}
		})
	}
}
