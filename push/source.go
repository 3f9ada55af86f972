package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	orasdef "oras.land/oras-go/v2/errdef"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocidir"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/verify"
)

// Installed is what push reads of an installed site: the image index of
// the generation being served, and the blobs of the site's store. cmd wires
// it to site.View, as it does for the registry.
type Installed interface {
	Images() (generation string, index []byte, err error)
	Blob(digest string) (*os.File, error)
}

// Site pushes the images of the generation a site serves: its image index,
// with content from the site's store. Nothing installed is
// errdef.ErrNotFound.
func Site(ctx context.Context, site Installed, opts Options) (*Result, error) {
	t, err := ParseTarget(opts.To)
	if err != nil {
		return nil, err
	}
	_, index, err := site.Images()
	if err != nil {
		return nil, err
	}
	roots, err := plan(t, opts.Mapping, index)
	if err != nil {
		return nil, err
	}
	p, err := newPusher(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	return p.push(ctx, storeContent{site}, roots)
}

// storeContent reads blobs from an installed site's store (which install
// checked) for oras.
type storeContent struct{ site Installed }

// Fetch implements content.Fetcher.
func (s storeContent) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	f, err := s.site.Blob(string(d.Digest))
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", err, orasdef.ErrNotFound)
	}
	return f, err
}

// Exists implements content.ReadOnlyStorage.
func (s storeContent) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	f, err := s.site.Blob(string(d.Digest))
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.Close()
	return true, nil
}

// Kit verifies the kit at kitPath with v (whose Sink it sets) while
// extracting its images into a temporary OCI layout and uploading, as they
// verify, the blobs the verified manifest leads to (early, rule 8); once
// the whole kit verified, it pushes the images: manifests and tags, and
// any blob not uploaded yet. A kit that fails verification pushes no
// manifest and no tag, and returns the verification error.
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
	lay, err := ocidir.New(tmp, ocidir.Options{})
	if err != nil {
		return nil, err
	}
	defer lay.Close()
	up := newEarly(ctx, p, tmp)
	onManifest := v.OnManifest
	v.OnManifest = func(m *manifest.Manifest, raw []byte) error {
		if onManifest != nil {
			if err := onManifest(m, raw); err != nil {
				return err
			}
		}
		up.roots(m)
		return nil
	}
	v.Sink = streamSink{w: lay, early: up}
	vres, err := verify.File(ctx, kitPath, v)
	if err != nil {
		up.finish(true)
		return nil, err
	}
	p.uploaded = up.finish(false)
	index := vres.ImageIndex
	if index == nil {
		index = []byte(`{"schemaVersion":2,"manifests":[]}`)
	}
	roots, err := plan(p.target, p.opts.Mapping, index)
	if err != nil {
		return nil, err
	}
	res, err := p.push(ctx, oci.NewStorageFromFS(os.DirFS(tmp)), roots)
	if err != nil && vres.Manifest.Base != nil {
		return nil, fmt.Errorf("%w (kit %s is a delta over %s %s and carries only what its base lacks: install it and push from the site)",
			err, kitPath, vres.Manifest.Base.Name, vres.Manifest.Base.Version)
	}
	return res, err
}

// Entry implements verify.Sink.
func (s streamSink) Entry(ctx context.Context, e manifest.Entry, r io.Reader) error {
	if !strings.HasPrefix(e.Path, "images/") {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	// Write reads r to its end, where the verifying reader reports a
	// mismatch: when it returns nil, the bytes verified.
	if err := s.w.Write(e, r); err != nil {
		return err
	}
	s.early.verified(e)
	return nil
}
