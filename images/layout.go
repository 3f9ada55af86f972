package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
)

// writer writes the output OCI image layout. Each blob is claimed once, so
// a blob shared by several images is written once.
type writer struct {
	dir   string
	blobs string

	mu      sync.Mutex
	claimed map[v1.Hash]bool
}

func newWriter(dir string) (*writer, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("image layout: %w", err)
	}
	return &writer{dir: dir, blobs: blobs, claimed: map[v1.Hash]bool{}}, nil
}

// claim reports whether h is not claimed yet, and claims it.
func (w *writer) claim(h v1.Hash) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.claimed[h] {
		return false
	}
	w.claimed[h] = true
	return true
}

// writeBytes writes a blob already checked against h.
func (w *writer) writeBytes(h v1.Hash, b []byte) error {
	if !w.claim(h) {
		return nil
	}
	return w.write(h, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// writeStream copies the blob b from its origin, checking its size and
// digest on the way.
func (w *writer) writeStream(ctx context.Context, b blobRef) error {
	rc, err := b.origin.blob(ctx, b.desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	return w.write(b.desc.Digest, func(f *os.File) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, b.desc.Size))
		// An origin that checks digests itself fails once it has seen all
		// the bytes; our own check below names the blob and the source.
		if err != nil && n < b.desc.Size {
			return fmt.Errorf("image %q: blob %s: %w", b.ref, b.desc.Digest, err)
		}
		var one [1]byte
		extra, _ := io.ReadFull(rc, one[:])
		if got := hex.EncodeToString(h.Sum(nil)); n != b.desc.Size || extra > 0 || got != b.desc.Digest.Hex {
			return fmt.Errorf("image %q: blob %s: got sha256:%s, %d bytes (more: %t), want %d: %w",
				b.ref, b.desc.Digest, got, n, extra > 0, b.desc.Size, errdef.ErrDigestMismatch)
		}
		return nil
	})
}

// write writes blob h through a temporary file in the blobs folder, made
// read-only and renamed into place once fill has succeeded.
func (w *writer) write(h v1.Hash, fill func(*os.File) error) error {
	f, err := os.CreateTemp(w.blobs, ".tmp-"+h.Hex+"-")
	if err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return fmt.Errorf("image layout: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(w.blobs, h.Hex)); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	return nil
}

// writeIndex writes index.json: the roots sorted by ref.name, then the
// extras (signatures, attestations, referrers) sorted by ref.name and
// digest, without duplicates; and oci-layout.
func (w *writer) writeIndex(roots, extras []entry) error {
	sortEntries(roots)
	sortEntries(extras)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	var last entry
	for i, e := range append(roots, extras...) {
		if i >= len(roots) && i > 0 && e.refName == last.refName && e.desc.Digest == last.desc.Digest {
			continue
		}
		last = e
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType:   string(e.desc.MediaType),
			Digest:      digest.Digest(e.desc.Digest.String()),
			Size:        e.desc.Size,
			Annotations: map[string]string{ocispec.AnnotationRefName: e.refName},
		})
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(w.dir, "index.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	l, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(w.dir, ocispec.ImageLayoutFile), l, 0o644); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	return nil
}

func sortEntries(es []entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].refName != es[j].refName {
			return es[i].refName < es[j].refName
		}
		return es[i].desc.Digest.Hex < es[j].desc.Digest.Hex
	})
}
