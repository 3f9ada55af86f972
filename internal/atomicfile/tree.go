package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/offkit/offkit/internal/copybuf"
)

// treeOpen is how many folders a Tree keeps open: entries come sorted by
// path, so the files of a folder come together, between those of its
// subfolders.
const treeOpen = 32

// Tree writes new files into a staging tree inside root, as WriteNew does,
// with fewer system calls: it creates each folder once and keeps the last
// few folders it wrote to open, so that a file in one of them is one openat
// instead of one per path element (twice: MkdirAll, then OpenFile). The
// folders are opened through root, so root still confines every name.
type Tree struct {
	root *os.Root
	made map[string]bool
	open []treeDir // most recently used first
}

type treeDir struct {
	name string
	dir  *os.File // opened through root
	fd   int
}

// NewTree returns a Tree writing inside root; Close closes the folders it
// opened, not root.
func NewTree(root *os.Root) *Tree {
	return &Tree{root: root, made: map[string]bool{}}
}

// WriteNew writes a new read-only (0444) file name, read from r, creating
// its parent folders; it never replaces anything (O_EXCL).
func (t *Tree) WriteNew(name string, r io.Reader) error {
	d, err := t.dir(path.Dir(name))
	if err != nil {
		return err
	}
	return createAt(d, name, path.Base(name), r)
}

// createAt writes the new read-only (0444) file base in the open folder d,
// read from r, never replacing anything. The folder was opened through
// root, and base is one path element created with O_EXCL|O_NOFOLLOW, so
// the file is inside root. openat(2) on the folder's descriptor, then
// os.NewFile, spares the four fcntl(2) and the epoll_ctl(2) by which
// os.Root.OpenFile tries each new file with the poller: a third of the
// system calls of a kit of small files.
func createAt(d treeDir, name, base string, r io.Reader) error {
	if base == "." || base == ".." || base == "/" {
		return &os.PathError{Op: "create", Path: name, Err: fmt.Errorf("not a file name")}
	}
	var fd int
	if err := retry(func() (err error) {
		fd, err = unix.Openat(d.fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o444)
		return err
	}); err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := copybuf.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dir returns folder name, open, creating it the first time.
func (t *Tree) dir(name string) (treeDir, error) {
	if d, ok := t.lookup(name); ok {
		return d, nil
	}
	f, err := t.mkdirOpen(name, !t.made[name])
	if err != nil {
		return treeDir{}, err
	}
	t.made[name] = true
	d := treeDir{name: name, dir: f, fd: int(f.Fd())}
	t.add(d)
	return d, nil
}

// mkdirOpen creates folder name (when create) and its parents, and opens
// it. From the nearest folder above it that t has open, it goes one
// element at a time (mkdirat, then openat with O_NOFOLLOW|O_DIRECTORY: the
// open folder is inside root, and so is a folder of it that is no
// symbolic link), keeping each folder it opens on the way open; with none
// open, through root (an openat per element).
func (t *Tree) mkdirOpen(name string, create bool) (*os.File, error) {
	var from *treeDir
	rest := name
	for p := path.Dir(name); p != "." && from == nil; p = path.Dir(p) {
		if d, ok := t.lookup(p); ok {
			from, rest = &d, name[len(p)+1:]
		}
	}
	if from == nil {
		if create {
			if err := t.root.MkdirAll(name, 0o755); err != nil {
				return nil, err
			}
		}
		return t.root.Open(name)
	}
	fd, at := from.fd, from.name
	elems := strings.Split(rest, "/")
	for i, elem := range elems {
		if elem == "" || elem == "." || elem == ".." {
			return nil, &os.PathError{Op: "open", Path: name, Err: unix.EINVAL}
		}
		at = at + "/" + elem
		if create {
			// An existing non-folder fails at the openat.
			if err := retry(func() error { return unix.Mkdirat(fd, elem, 0o755) }); err != nil && err != unix.EEXIST {
				return nil, &os.PathError{Op: "mkdir", Path: at, Err: err}
			}
		}
		var next int
		if err := retry(func() (err error) {
			next, err = unix.Openat(fd, elem, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			return err
		}); err != nil {
			return nil, &os.PathError{Op: "open", Path: at, Err: err}
		}
		f := os.NewFile(uintptr(next), at)
		if i == len(elems)-1 {
			return f, nil
		}
		// Kept open, at the front: fd stays valid for the next element.
		t.add(treeDir{name: at, dir: f, fd: next})
		t.made[at] = true
		fd = next
	}
	panic("unreachable")
}

// lookup returns folder name if t has it open, and moves it to the front.
func (t *Tree) lookup(name string) (treeDir, bool) {
	for i, d := range t.open {
		if d.name == name {
			copy(t.open[1:i+1], t.open[:i])
			t.open[0] = d
			return d, true
		}
	}
	return treeDir{}, false
}

// add puts d at the front of the open folders, closing the least recently
// used one when there are treeOpen.
func (t *Tree) add(d treeDir) {
	if len(t.open) == treeOpen {
		t.open[treeOpen-1].dir.Close()
		t.open = t.open[:treeOpen-1]
	}
	t.open = append([]treeDir{d}, t.open...)
}

// retry calls f again while it fails with EINTR.
func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// Close closes the folders t keeps open.
func (t *Tree) Close() error {
	for _, d := range t.open {
		d.dir.Close()
	}
	t.open = nil
	return nil
}
