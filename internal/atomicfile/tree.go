package atomicfile

import (
	"io"
	"os"
	"path"
)

// treeOpen is how many folders a Tree keeps open: entries come sorted by
// path, so the files of a folder come together, between those of its
// subfolders.
const treeOpen = 8

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
	root *os.Root
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
	return create(d, path.Base(name), r)
}

// dir returns folder name, open, creating it the first time.
func (t *Tree) dir(name string) (*os.Root, error) {
	for i, d := range t.open {
		if d.name == name {
			copy(t.open[1:i+1], t.open[:i])
			t.open[0] = d
			return d.root, nil
		}
	}
	if !t.made[name] {
		if err := t.root.MkdirAll(name, 0o755); err != nil {
			return nil, err
		}
		t.made[name] = true
	}
	r, err := t.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if len(t.open) == treeOpen {
		t.open[treeOpen-1].root.Close()
		t.open = t.open[:treeOpen-1]
	}
	t.open = append([]treeDir{{name, r}}, t.open...)
	return r, nil
}

// Close closes the folders t keeps open.
func (t *Tree) Close() error {
	for _, d := range t.open {
		d.root.Close()
	}
	t.open = nil
	return nil
}
