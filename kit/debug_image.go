package kit

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// imageScan reads the debug sources of kind image: the ELF files in the
// layers of an image of the spec's images:, streamed from the image's
// sources (each layer checked against its digest as it is read) and
// decompressed on the way; only the ELF files are copied, one by one, into
// tmp, where debugStore.add reads them as it reads any file.
type imageScan struct {
	ctx  context.Context
	plan *images.Plan
	tmp  string
	n    int // spooled files, to name them
}

// imageFile is one file an image's layers leave at a path.
type imageFile struct {
	layer int
	spool string // a copy in tmp
}

// maxImageLayers bounds the layers of one image manifest read.
const maxImageLayers = 1024

// add scans the image ds.Src names and adds its files to d: each ELF file
// with a GNU build id and a .debug_info section as <aa>/<rest>.debug, and
// each file ds.Paths lists as the executable <aa>/<rest> (it must be in
// the image, ELF, with a GNU build id).
func (s *imageScan) add(d *debugStore, ds manifest.DebugSource, field string) error {
	if s == nil || s.plan == nil {
		return fmt.Errorf("%s/src %q: not the ref of an image of the spec's images: %w", field, ds.Src, errdef.ErrInvalid)
	}
	var img *manifest.Image
	for i := range s.plan.Images {
		if s.plan.Images[i].Reference == ds.Src {
			img = &s.plan.Images[i]
			break
		}
	}
	if img == nil {
		return fmt.Errorf("%s/src %q: not the ref of an image of the spec's images: %w", field, ds.Src, errdef.ErrInvalid)
	}
	files := map[string]*images.File{}
	for i := range s.plan.Files {
		files[s.plan.Files[i].Path] = &s.plan.Files[i]
	}
	listed := map[string]bool{}
	for _, p := range ds.Paths {
		c := strings.TrimPrefix(path.Clean("/"+p), "/")
		if c == "" || c == "." {
			return fmt.Errorf("%s/paths: %q is not a file path: %w", field, p, errdef.ErrInvalid)
		}
		listed[c] = false
	}
	manifests, err := imageManifests(ds.Src, img.Digest, files)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	for _, md := range manifests {
		if err := s.addManifest(d, ds, field, md, files, listed); err != nil {
			return err
		}
	}
	var missing []string
	for p, seen := range listed {
		if !seen {
			missing = append(missing, "/"+p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%s/paths: %s not ELF files of image %s: %w", field, strings.Join(missing, ", "), ds.Src, errdef.ErrNotFound)
	}
	return nil
}

// imageManifests lists the digests of the image manifests of the image
// whose root (manifest or index) is digest: the root itself, or the
// manifests of an index the kit carries.
func imageManifests(ref, digest string, files map[string]*images.File) ([]string, error) {
	b, err := blobData(ref, digest, files)
	if err != nil {
		return nil, err
	}
	var doc struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("image %s: %s: %v: %w", ref, digest, err, errdef.ErrInvalid)
	}
	if doc.Manifests == nil {
		return []string{digest}, nil
	}
	var out []string
	for _, m := range doc.Manifests {
		if _, ok := files["blobs/sha256/"+m.Digest.Encoded()]; ok && m.Digest.Algorithm() == "sha256" {
			out = append(out, m.Digest.String())
		}
	}
	return out, nil
}

// blobData is the content of a small blob of the plan (a manifest).
func blobData(ref, digest string, files map[string]*images.File) ([]byte, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	f := files["blobs/sha256/"+hex]
	if !ok || f == nil || f.Data == nil {
		return nil, fmt.Errorf("image %s: manifest %s is not in the kit's image layout: %w", ref, digest, errdef.ErrInvalid)
	}
	return f.Data, nil
}

// addManifest applies the layers of image manifest md in order (later
// layers replace and whiteouts remove the files of earlier ones) and adds
// the ELF files left.
func (s *imageScan) addManifest(d *debugStore, ds manifest.DebugSource, field, md string, files map[string]*images.File, listed map[string]bool) error {
	b, err := blobData(ds.Src, md, files)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: image %s: manifest %s: %v: %w", field, ds.Src, md, err, errdef.ErrInvalid)
	}
	if len(m.Layers) > maxImageLayers {
		return fmt.Errorf("%s: image %s: manifest %s: %d layers, over %d: %w", field, ds.Src, md, len(m.Layers), maxImageLayers, errdef.ErrInvalid)
	}
	tree := map[string]imageFile{}
	for i, l := range m.Layers {
		f := files["blobs/sha256/"+l.Digest.Encoded()]
		if f == nil || l.Digest.Algorithm() != "sha256" {
			return fmt.Errorf("%s: image %s: layer %s is not in the kit's image layout (a non-distributable layer cannot be scanned): %w", field, ds.Src, l.Digest, errdef.ErrInvalid)
		}
		if err := s.layer(tree, i, f); err != nil {
			return fmt.Errorf("%s: image %s: layer %s: %w", field, ds.Src, l.Digest, err)
		}
	}
	names := make([]string, 0, len(tree))
	for p := range tree {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		f := tree[p]
		origin, err := examine(f.spool)
		_, isListed := listed[p]
		if err != nil || origin.id == "" || !origin.debugInfo && !isListed {
			if isListed {
				if err == nil {
					err = fmt.Errorf("no GNU build id note: %w", errdef.ErrInvalid)
				}
				return fmt.Errorf("%s/paths: image %s (%s): /%s: %w", field, ds.Src, md, p, err)
			}
			os.Remove(f.spool)
			continue // not a file with debug information: not stored
		}
		if isListed {
			listed[p] = true
		}
		img := &inImage{ref: ds.Src, digest: md, path: p, debugInfo: origin.debugInfo, listed: isListed}
		if err := d.add(ds, field, walked{abs: f.spool}, img); err != nil {
			return err
		}
	}
	return nil
}

type examined struct {
	id        string
	debugInfo bool
}

// examine reads the GNU build id of the ELF copy at p and whether it has
// a .debug_info section with bytes.
func examine(p string) (examined, error) {
	fh, err := os.Open(p)
	if err != nil {
		return examined{}, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return examined{}, err
	}
	bid, err := debugstore.ReadBuildID(fh, st.Size())
	if err != nil {
		return examined{}, err
	}
	sec, found, err := debugstore.FindSection(fh, st.Size(), ".debug_info")
	if err != nil {
		return examined{}, err
	}
	return examined{id: bid.GNU, debugInfo: found && sec.Size > 0}, nil
}

var elfMagic = []byte("\x7fELF")

// layer reads one layer blob (tar, gzip or zstd, told by its first bytes)
// as a stream and applies it to tree: a whiteout .wh.NAME removes NAME
// (and what is under it) of earlier layers, an opaque .wh..wh..opq the
// earlier content of its folder, any other entry replaces what earlier
// layers had at its path; each regular ELF file is copied into s.tmp.
func (s *imageScan) layer(tree map[string]imageFile, n int, f *images.File) error {
	rc, err := f.Open(s.ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	var r io.Reader = br
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %v: %w", err, errdef.ErrInvalid)
		}
		defer zr.Close()
		r = zr
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return fmt.Errorf("zstd: %v: %w", err, errdef.ErrInvalid)
		}
		defer zr.Close()
		r = zr
	}
	remove := func(p string, under bool) {
		for q, f := range tree {
			if f.layer < n && (q == p || under && strings.HasPrefix(q, p+"/") || p == "" && under) {
				os.Remove(f.spool)
				delete(tree, q)
			}
		}
	}
	tr := tar.NewReader(r)
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %v: %w", err, errdef.ErrInvalid)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue
		}
		dir, base := path.Dir(name), path.Base(name)
		if dir == "." {
			dir = ""
		}
		switch {
		case base == ".wh..wh..opq":
			remove(dir, true)
			continue
		case strings.HasPrefix(base, ".wh."):
			remove(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
			continue
		}
		remove(name, h.Typeflag != tar.TypeDir)
		if h.Typeflag != tar.TypeReg || h.Size < int64(len(elfMagic)) {
			continue
		}
		if h.Size > debugstore.MaxDebugFile {
			return fmt.Errorf("/%s: %d bytes, over the limit of %d for a debug file: %w", name, h.Size, int64(debugstore.MaxDebugFile), errdef.ErrInvalid)
		}
		tb := bufio.NewReaderSize(tr, 4096)
		if m, _ := tb.Peek(len(elfMagic)); string(m) != string(elfMagic) {
			continue
		}
		s.n++
		spool := fmt.Sprintf("%s/%d.elf", s.tmp, s.n)
		if err := copyTo(spool, tb, h.Size); err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		if old, ok := tree[name]; ok {
			os.Remove(old.spool)
		}
		tree[name] = imageFile{layer: n, spool: spool}
	}
	// The rest of the blob (tar padding, the compressed stream's end):
	// read, so that its digest is checked.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	return nil
}

// copyTo writes the size bytes of r to a new file p.
func copyTo(p string, r io.Reader, size int64) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes: %w", n, size, errdef.ErrInvalid)
	}
	if err != nil {
		os.Remove(p)
	}
	return err
}
