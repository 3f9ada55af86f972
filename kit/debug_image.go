package kit

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
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
	// max bounds the bytes held in tmp at once; 0 means MaxImageSpool.
	max int64
	// maxFiles bounds the files held in tmp at once; 0 means
	// MaxImageSpoolFiles.
	maxFiles int
	n        int   // spooled files, to name them
	spooled  int64 // bytes of the spooled files still in tmp
	held     int   // spooled files still in tmp
}

// imageFile is one file an image's layers leave at a path.
type imageFile struct {
	spool string // a copy in tmp
	size  int64
}

// maxImageLayers bounds the layers of one image manifest read.
const maxImageLayers = 1024

// MaxImageSpool bounds the bytes of the ELF files a build holds at once in
// its temporary folder for its debug sources of kind image (the files a
// layer leaves, until a later layer replaces or removes them, and those
// kept, until the kit is written): an image whose layers hold more is
// refused (exit 11), naming it and the limit, before the disk fills.
const MaxImageSpool = 16 << 30

// MaxImageSpoolFiles bounds, likewise, the number of those files: each is
// a file in the temporary folder and an entry in the scan's index, and a
// layer of many tiny "ELF" files would otherwise make as many.
const MaxImageSpoolFiles = 1 << 17

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
	tree := newLayerTree()
	for _, l := range m.Layers {
		f := files["blobs/sha256/"+l.Digest.Encoded()]
		if f == nil || l.Digest.Algorithm() != "sha256" {
			return fmt.Errorf("%s: image %s: layer %s is not in the kit's image layout (a non-distributable layer cannot be scanned): %w", field, ds.Src, l.Digest, errdef.ErrInvalid)
		}
		if err := s.layer(tree, f); err != nil {
			return fmt.Errorf("%s: image %s: layer %s: %w", field, ds.Src, l.Digest, err)
		}
	}
	left := tree.lower.files
	names := make([]string, 0, len(left))
	for p := range left {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		f := left[p]
		_, isListed := listed[p]
		origin, err := examine(f.spool, isListed)
		if err != nil || origin.id.GNU == "" || !origin.debugInfo && !isListed {
			if isListed {
				if err == nil {
					err = fmt.Errorf("no GNU build id note: %w", errdef.ErrInvalid)
				}
				return fmt.Errorf("%s/paths: image %s (%s): /%s: %w", field, ds.Src, md, p, err)
			}
			s.remove(f)
			continue // not a file with debug information: not stored
		}
		if isListed {
			listed[p] = true
		}
		img := &inImage{ref: ds.Src, digest: md, path: p, debugInfo: origin.debugInfo, listed: isListed, bid: &origin.id}
		if err := d.add(ds, field, walked{abs: f.spool}, img); err != nil {
			return err
		}
	}
	return nil
}

// remove removes the spooled copy f from tmp.
func (s *imageScan) remove(f imageFile) {
	os.Remove(f.spool)
	s.spooled -= f.size
	s.held--
}

// layerTree is the ELF files the layers of an image read so far leave:
// lower, those of the earlier layers, which the layer being read replaces
// and removes, and cur, those of the layer being read, which join lower
// when it ends. A whiteout or a file put where a folder was removes the
// earlier files under that folder: each file is removed at most once, and
// finding those under a folder costs what it removes, not the size of the
// tree (with one flat map, a layer of many whiteouts over a tree of many
// files costs their product).
type layerTree struct {
	lower, cur *pathIndex
}

func newLayerTree() *layerTree {
	return &layerTree{lower: newPathIndex(), cur: newPathIndex()}
}

// pathIndex is a set of files by path, and, for each folder, the paths of
// the files under it (at any depth; "" is the root).
type pathIndex struct {
	files map[string]imageFile
	under map[string]map[string]struct{}
}

func newPathIndex() *pathIndex {
	return &pathIndex{files: map[string]imageFile{}, under: map[string]map[string]struct{}{}}
}

// folders calls fn with each folder above the clean relative path p,
// from its parent up to the root "".
func folders(p string, fn func(dir string)) {
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			fn("")
			return
		}
		p = p[:i]
		fn(p)
	}
}

func (t *pathIndex) add(p string, f imageFile) {
	t.files[p] = f
	folders(p, func(dir string) {
		set := t.under[dir]
		if set == nil {
			set = map[string]struct{}{}
			t.under[dir] = set
		}
		set[p] = struct{}{}
	})
}

// take removes the file at p from t and returns it.
func (t *pathIndex) take(p string) (imageFile, bool) {
	f, ok := t.files[p]
	if !ok {
		return imageFile{}, false
	}
	delete(t.files, p)
	folders(p, func(dir string) {
		if set := t.under[dir]; set != nil {
			delete(set, p)
			if len(set) == 0 {
				delete(t.under, dir)
			}
		}
	})
	return f, true
}

// takeUnder removes the files under the folder dir ("" for the root)
// from t and returns them.
func (t *pathIndex) takeUnder(dir string) []imageFile {
	set := t.under[dir]
	if len(set) == 0 {
		return nil
	}
	out := make([]imageFile, 0, len(set))
	for _, p := range slices.Collect(maps.Keys(set)) {
		if f, ok := t.take(p); ok {
			out = append(out, f)
		}
	}
	return out
}

type examined struct {
	id        debugstore.BuildID
	debugInfo bool
}

// examine reads whether the ELF copy at p has a .debug_info section with
// bytes and, when it has one or is listed (the only files kept), its
// build ids, once: debugStore.add takes them from inImage. A file neither
// listed nor with debug information is not stored, and its build id not
// read.
func examine(p string, listed bool) (examined, error) {
	fh, err := os.Open(p)
	if err != nil {
		return examined{}, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return examined{}, err
	}
	var e examined
	if listed {
		// A listed file's build id error is the one reported.
		if e.id, err = debugstore.ReadBuildID(fh, st.Size()); err != nil {
			return examined{}, err
		}
	}
	sec, found, err := debugstore.FindSection(fh, st.Size(), ".debug_info")
	if err != nil {
		return examined{}, err
	}
	e.debugInfo = found && sec.Size > 0
	if !listed && e.debugInfo {
		if e.id, err = debugstore.ReadBuildID(fh, st.Size()); err != nil {
			return examined{}, err
		}
	}
	return e, nil
}

var elfMagic = []byte("\x7fELF")

// layer reads one layer blob (tar, gzip or zstd, told by its first bytes)
// as a stream and applies it to tree: a whiteout .wh.NAME removes NAME
// (and what is under it) of earlier layers, an opaque .wh..wh..opq the
// earlier content of its folder, any other entry replaces what earlier
// layers (or an earlier entry of the same name in this layer) had at its
// path; each regular ELF file is copied into s.tmp, within s.max bytes
// held at once.
func (s *imageScan) layer(tree *layerTree, f *images.File) error {
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
	// removeLower removes the file the earlier layers left at p and, with
	// under, those under the folder p. A whiteout removes only those: a
	// file of its own layer can be hidden only by a later one.
	removeLower := func(p string, under bool) {
		if f, ok := tree.lower.take(p); ok {
			s.remove(f)
		}
		if under {
			for _, f := range tree.lower.takeUnder(p) {
				s.remove(f)
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
			for _, f := range tree.lower.takeUnder(dir) {
				s.remove(f)
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			removeLower(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
			continue
		}
		// An entry replaces the file at its path; a file (not a folder)
		// also removes the earlier folder's content.
		removeLower(name, h.Typeflag != tar.TypeDir)
		if old, ok := tree.cur.take(name); ok {
			s.remove(old)
		}
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
		if limit := s.limit(); h.Size > limit-s.spooled {
			return fmt.Errorf("/%s: %d bytes more would hold %d bytes of ELF files copied out of image layers, over the limit of %d (%d GiB) a build holds at once: %w",
				name, h.Size, s.spooled+h.Size, limit, limit>>30, errdef.ErrInvalid)
		}
		if limit := s.fileLimit(); s.held >= limit {
			return fmt.Errorf("/%s: one more would hold over %d ELF files copied out of image layers, the limit a build holds at once: %w",
				name, limit, errdef.ErrInvalid)
		}
		s.n++
		spool := fmt.Sprintf("%s/%d.elf", s.tmp, s.n)
		if err := copyTo(spool, tb, h.Size); err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		s.spooled += h.Size
		s.held++
		tree.cur.add(name, imageFile{spool: spool, size: h.Size})
	}
	// The layer's files now lie under the next one's.
	for p, f := range tree.cur.files {
		tree.lower.add(p, f)
	}
	tree.cur = newPathIndex()
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

// limit is the bound on the bytes held in s.tmp at once.
func (s *imageScan) limit() int64 {
	if s.max > 0 {
		return s.max
	}
	return MaxImageSpool
}

// fileLimit is maxFiles, or MaxImageSpoolFiles.
func (s *imageScan) fileLimit() int {
	if s.maxFiles > 0 {
		return s.maxFiles
	}
	return MaxImageSpoolFiles
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
