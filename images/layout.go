package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/verifyread"
	"github.com/offkit/offkit/manifest"
)

// Plan is the OCI image layout the sources make, resolved: its files with
// their sizes and digests, and a way to read each. The small files (the
// oci-layout marker, index.json, manifests, indexes, image configs,
// signature payloads and keys) are held checked in memory; the other blobs
// are read from their sources only when opened. Write writes the layout to a
// folder; a packer can instead stream Files one by one, in order, with no
// copy on disk.
type Plan struct {
	// Images has one entry per source, in the order of the sources.
	Images []manifest.Image
	// Files lists every file of the layout once, sorted by Path.
	Files []File

	sources []*sourcePlan
	jobs    int
	log     *slog.Logger
}

// File is one file of a Plan.
type File struct {
	// Path is the slash-separated path in the layout: "oci-layout",
	// "index.json" or "blobs/sha256/<hex>".
	Path string
	// Size is the number of bytes; SHA256 their lowercase hex digest.
	Size   int64
	SHA256 string
	// Data is the content of a small file, already checked; nil for a blob
	// read from its source by Open.
	Data []byte
	// MediaType is the media type of a blob that is a manifest or an index
	// (what the kit manifest records for it); "" for any other file.
	MediaType string

	blob *blobRef
}

// Open returns the content of f. The bytes of a blob read from its source
// are checked as they are read, against Size and SHA256: instead of io.EOF
// the reader returns an error wrapping errdef.ErrDigestMismatch, naming the
// image and the blob, when they are fewer, more or different. Files of one
// Plan may be open at the same time, on several goroutines.
func (f *File) Open(ctx context.Context) (io.ReadCloser, error) {
	if f.blob == nil {
		return io.NopCloser(bytes.NewReader(f.Data)), nil
	}
	rc, err := f.blob.origin.blob(ctx, f.blob.desc)
	if err != nil {
		return nil, err
	}
	b := f.blob
	v := verifyread.New(rc, fmt.Sprintf("image %q: blob %s", b.ref, b.desc.Digest), b.desc.Size, b.desc.Digest.String())
	return struct {
		io.Reader
		io.Closer
	}{v, rc}, nil
}

// Close releases the sources of the plan (open layout folders). Files
// cannot be opened after Close.
func (p *Plan) Close() error {
	for _, s := range p.sources {
		if s != nil {
			s.close()
		}
	}
	return nil
}

// list fills p.Images and p.Files from the resolved sources. A blob listed
// by several sources is read from the first one, in the order of the
// sources, that holds it in memory, or else the first that lists it.
func (p *Plan) list() error {
	seen := map[string]int{}
	add := func(f File) {
		if i, ok := seen[f.Path]; ok {
			if p.Files[i].MediaType == "" {
				p.Files[i].MediaType = f.MediaType
			}
			return
		}
		seen[f.Path] = len(p.Files)
		p.Files = append(p.Files, f)
	}
	for _, s := range p.sources {
		for _, m := range s.inline {
			add(File{Path: blobPath(m.digest), Size: int64(len(m.data)), SHA256: m.digest.Hex, Data: m.data, MediaType: m.mediaType})
		}
	}
	var roots, extras []entry
	for _, s := range p.sources {
		for i := range s.blobs {
			b := &s.blobs[i]
			add(File{Path: blobPath(b.desc.Digest), Size: b.desc.Size, SHA256: b.desc.Digest.Hex, blob: b})
		}
		roots = append(roots, s.root)
		extras = append(extras, s.extras...)
		p.Images = append(p.Images, s.image)
	}
	idx, err := indexJSON(roots, extras)
	if err != nil {
		return err
	}
	marker, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	for _, f := range []File{{Path: "index.json", Data: idx}, {Path: ocispec.ImageLayoutFile, Data: marker}} {
		sum := sha256.Sum256(f.Data)
		f.Size, f.SHA256 = int64(len(f.Data)), hex.EncodeToString(sum[:])
		add(f)
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	return nil
}

func blobPath(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex
}

// Write writes the layout into the folder dir, creating it: the small
// files first, then the blobs read from their sources, several at a time
// (Options.Jobs), each checked as it is copied, then index.json and
// oci-layout. dir should be new or empty: blobs already there are
// overwritten, index.json is replaced.
func (p *Plan) Write(ctx context.Context, dir string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	for _, f := range p.Files {
		if f.blob != nil || !strings.HasPrefix(f.Path, "blobs/") {
			continue
		}
		if err := writeBlob(dir, f, func(w io.Writer) error {
			_, err := w.Write(f.Data)
			return err
		}); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.jobs)
	for _, f := range p.Files {
		if f.blob == nil {
			continue
		}
		g.Go(func() error {
			rc, err := f.Open(gctx)
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := writeBlob(dir, f, func(w io.Writer) error {
				_, err := io.Copy(w, rc)
				return err
			}); err != nil {
				return err
			}
			p.log.Debug("blob written", "digest", f.blob.desc.Digest.String(), "size", f.Size, "ref", f.blob.ref)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// index.json, then oci-layout: a folder with the marker is complete.
	for _, name := range []string{"index.json", ocispec.ImageLayoutFile} {
		for _, f := range p.Files {
			if f.Path != name {
				continue
			}
			if err := atomicfile.WriteFile(filepath.Join(dir, name), f.Data, 0o644); err != nil {
				return fmt.Errorf("image layout: %w", err)
			}
		}
	}
	return nil
}

// writeBlob writes the blob f through a temporary file in its folder, made
// read-only and renamed into place once fill has succeeded.
func writeBlob(dir string, f File, fill func(io.Writer) error) error {
	folder := filepath.Join(dir, filepath.FromSlash(path.Dir(f.Path)))
	tmp, err := os.CreateTemp(folder, ".tmp-"+f.SHA256+"-")
	if err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return fmt.Errorf("image layout: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, filepath.FromSlash(f.Path))); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	return nil
}

// indexJSON encodes index.json: the roots sorted by ref.name, then the
// extras (signatures, attestations, referrers) sorted by ref.name and
// digest, without duplicates.
func indexJSON(roots, extras []entry) ([]byte, error) {
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
		return nil, err
	}
	return append(b, '\n'), nil
}

func sortEntries(es []entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].refName != es[j].refName {
			return es[i].refName < es[j].refName
		}
		return es[i].desc.Digest.Hex < es[j].desc.Digest.Hex
	})
}
