package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// Site pushes the images of the generation installed at root: its image
// index, with content from the site store (ROOT/store/oci). Nothing
// installed is errdef.ErrNotFound.
func Site(ctx context.Context, root string, opts Options) (*Result, error) {
	if _, err := ParseTarget(opts.To); err != nil {
		return nil, err
	}
	_, index, err := site.NewView(root).Images()
	if err != nil {
		return nil, err
	}
	return Layout(ctx, filepath.Join(root, "store", "oci"), index, opts)
}

// Kit verifies the kit at kitPath with v (whose Sink it sets) while
// extracting its images into a temporary OCI layout, then pushes them. A
// kit that fails verification pushes nothing and returns the verification
// error.
func Kit(ctx context.Context, kitPath string, v verify.Options, opts Options) (*Result, error) {
	t, err := ParseTarget(opts.To)
	if err != nil {
		return nil, err
	}
	// Fail early on an unreachable registry, before a long verification.
	p, err := newPusher(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "offkit-push-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	lay, err := newLayoutSink(tmp)
	if err != nil {
		return nil, err
	}
	defer lay.root.Close()
	v.Sink = lay
	vres, err := verify.File(ctx, kitPath, v)
	if err != nil {
		return nil, err
	}
	index := lay.index
	if index == nil {
		index = []byte(`{"schemaVersion":2,"manifests":[]}`)
	}
	res, err := p.layout(ctx, tmp, index)
	if err != nil && vres.Manifest.Base != nil {
		return nil, fmt.Errorf("%w (kit %s is a delta over %s %s and carries only what its base lacks: install it and push from the site)",
			err, kitPath, vres.Manifest.Base.Name, vres.Manifest.Base.Version)
	}
	return res, err
}

// layoutSink is the verify.Sink of Kit: it writes the kit's images/ entries
// as an OCI layout under dir, confined with os.Root, and reads past every
// other entry.
type layoutSink struct {
	root  *os.Root
	index []byte
}

func newLayoutSink(dir string) (*layoutSink, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if err := r.MkdirAll("blobs/sha256", 0o755); err != nil {
		r.Close()
		return nil, err
	}
	return &layoutSink{root: r}, nil
}

// Entry implements verify.Sink.
func (s *layoutSink) Entry(ctx context.Context, e manifest.Entry, r io.Reader) error {
	name, ok := strings.CutPrefix(e.Path, "images/")
	switch {
	case !ok:
		_, err := io.Copy(io.Discard, r)
		return err
	case name == "index.json":
		b, err := io.ReadAll(io.LimitReader(r, site.MaxImageIndex+1))
		if err != nil {
			return err
		}
		if len(b) > site.MaxImageIndex {
			return fmt.Errorf("over %d bytes: %w", site.MaxImageIndex, errdef.ErrInvalid)
		}
		s.index = b
		return atomicfile.WriteNew(s.root, name, bytes.NewReader(b))
	case name == "oci-layout":
		return atomicfile.WriteNew(s.root, name, r)
	}
	hexd, ok := strings.CutPrefix(name, "blobs/sha256/")
	if !ok || len(hexd) != 64 || hexd != e.SHA256 {
		return fmt.Errorf("not a blob named by its digest: %w", errdef.ErrInvalid)
	}
	return atomicfile.WriteNew(s.root, path.Join("blobs", "sha256", hexd), r)
}
