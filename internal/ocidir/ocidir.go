// Package ocidir writes the images of a kit (its images/ entries, an OCI
// image layout) into a folder, as verify streams them: the one writer
// behind `offkit install` (which stages new blobs for the site's shared
// store) and `offkit push KIT` (which extracts a layout to push from).
//
// Rules: only images/oci-layout, images/index.json and
// images/blobs/sha256/<hex> entries whose name is their own sha256 are
// accepted (anything else under images/ is errdef.ErrInvalid); every file
// is created new (O_EXCL), read-only, inside a folder confined with
// os.Root. The bytes come from verify, which checks them against the
// manifest as they are read; the layout's index is not taken from here but
// from verify.Result.ImageIndex, once verify has checked it.
package ocidir

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// Options say where the blobs go. The zero value writes an OCI layout:
// blobs in blobs/sha256, oci-layout and index.json beside.
type Options struct {
	// BlobDir is the folder of the blobs inside the folder; "" means
	// "blobs/sha256".
	BlobDir string
	// BlobsOnly skips oci-layout and index.json (a site keeps its own).
	BlobsOnly bool
	// Have reports the blobs that need not be written (a site's store has
	// them); nil writes every blob.
	Have func(hex string) bool
}

// Writer writes a kit's images into a folder.
type Writer struct {
	root   *os.Root
	tree   *atomicfile.Tree // keeps the blob folder open across blobs
	opts   Options
	blobs  []string
	shared int
}

// New returns a Writer into the folder dir, which must exist.
func New(dir string, opts Options) (*Writer, error) {
	if opts.BlobDir == "" {
		opts.BlobDir = "blobs/sha256"
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if err := r.MkdirAll(opts.BlobDir, 0o755); err != nil {
		r.Close()
		return nil, err
	}
	return &Writer{root: r, tree: atomicfile.NewTree(r), opts: opts}, nil
}

// Write writes the entry e, a path under images/, read from r (to its end,
// even for a file it skips).
func (w *Writer) Write(e manifest.Entry, r io.Reader) error {
	name, ok := strings.CutPrefix(e.Path, "images/")
	if !ok {
		return fmt.Errorf("%q is not under images/: %w", e.Path, errdef.ErrInvalid)
	}
	switch name {
	case "oci-layout", "index.json":
		if w.opts.BlobsOnly {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		return w.tree.WriteNew(name, r)
	}
	hexd, ok := strings.CutPrefix(name, "blobs/sha256/")
	if !ok || len(hexd) != 64 || hexd != e.SHA256 {
		return fmt.Errorf("not a blob named by its digest: %w", errdef.ErrInvalid)
	}
	if w.opts.Have != nil && w.opts.Have(hexd) {
		w.shared++
		_, err := io.Copy(io.Discard, r)
		return err
	}
	w.blobs = append(w.blobs, hexd)
	return w.tree.WriteNew(path.Join(w.opts.BlobDir, hexd), r)
}

// Blobs returns the hex digests of the blobs written, in order.
func (w *Writer) Blobs() []string { return w.blobs }

// Shared returns how many blobs were skipped because Have had them.
func (w *Writer) Shared() int { return w.shared }

// Close releases the folder.
func (w *Writer) Close() error {
	w.tree.Close()
	return w.root.Close()
}
