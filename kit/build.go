// Package kit builds and signs offkit kits: it collects the sources a spec
// names (files, rules, dashboards, registry images) and writes them with
// package kitfile, the kit file format: one deterministic tar in seekable
// zstd frames, `NAME-VERSION.kit.tar.zst`, laid out as docs/kit-format.md says: offkit/manifest.json, offkit/manifest.json.sig, SHA256SUMS, then the
// content sorted by path (images/, rules/, dashboards/, mirror/, debug/,
// files/).
//
// The bytes depend only on the spec, the sources and the key: times come
// from the spec's createdAt (or SOURCE_DATE_EPOCH passed in by the caller),
// every tar header is regular, 0644, uid/gid 0, no names, and frames are
// encoded one by one with fixed settings (see internal/seekable).
package kit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// BuildOptions configure Build. The zero value builds an unsigned kit into
// the current folder.
type BuildOptions struct {
	// Dir is the folder relative source paths are resolved against (the
	// kit.yaml's folder).
	Dir string
	// OutDir receives NAME-VERSION.kit.tar.zst and its .sig.
	OutDir string
	// Key signs the manifest and the whole file; nil (and no LoadKey)
	// builds an unsigned kit.
	Key *sign.PrivateKey
	// LoadKey, when Key is nil, gives the key. Build calls it as it
	// starts, beside resolving the images and, when no file source is a
	// folder, beside listing and hashing the files, so that decrypting the
	// key (scrypt, about 0.2 s) overlaps them; its error ends the build
	// once the sources are collected.
	LoadKey func() (*sign.PrivateKey, error)
	// SourceDateEpoch is the kit's time when the spec has no createdAt.
	SourceDateEpoch *time.Time
	// PlainHTTP pulls every registry image over http.
	PlainHTTP bool
	// Concurrency of frame compression; 0 means GOMAXPROCS. It never
	// changes the bytes.
	Concurrency int
	Builder     manifest.Builder
	Log         *slog.Logger
	// Progress is called with the bytes packed so far and the total.
	Progress func(done, total int64)
	// Now is the clock of an Authority snapshot fetched at build time
	// (nil: time.Now); nothing else in a kit comes from the clock.
	Now func() time.Time
}

// BuildResult is what Build wrote.
type BuildResult struct {
	Path           string
	SignaturePath  string // "" for an unsigned kit
	Manifest       *manifest.Manifest
	ManifestDigest string
	Size           int64
}

// source is one content entry and where its bytes come from: a file, whose
// digest was taken when it was listed and is checked again as it is packed,
// or an image file, whose reader checks the bytes itself.
type source struct {
	entry manifest.Entry
	file  string
	image *images.File
	// data is the content of a source offkit generates (the debug
	// manifest); file then only names it in messages.
	data []byte
}

// Build collects what spec names and writes the kit.
func Build(ctx context.Context, spec *manifest.Spec, opts BuildOptions) (*BuildResult, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	created := spec.CreatedAt
	if created == nil {
		created = opts.SourceDateEpoch
	}
	if created == nil {
		return nil, fmt.Errorf("spec /createdAt: missing: set createdAt in kit.yaml or SOURCE_DATE_EPOCH (a kit's time never comes from the clock): %w", errdef.ErrInvalid)
	}
	level, frameSize := DefaultLevel, int64(DefaultFrameSize)
	if c := spec.Compression; c != nil {
		if c.Level != 0 {
			level = c.Level
		}
		if c.FrameSize != 0 {
			frameSize = c.FrameSize
		}
	}
	if frameSize > MaxFrameSize {
		return nil, fmt.Errorf("spec /compression/frameSize: %d over %d: %w", frameSize, MaxFrameSize, errdef.ErrInvalid)
	}
	outDir := opts.OutDir
	if outDir == "" {
		outDir = "."
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}

	m := &manifest.Manifest{
		SchemaVersion:        manifest.SchemaVersion,
		Name:                 spec.Name,
		Version:              spec.Version,
		CreatedAt:            created.UTC().Truncate(time.Second),
		ExpiresAt:            spec.ExpiresAt,
		StalenessWindowHours: spec.StalenessWindowHours,
		Builder:              opts.Builder,
		Compression:          manifest.Compression{Algorithm: "zstd", Level: level, FrameSize: frameSize},
	}
	if m.ExpiresAt != nil && !m.ExpiresAt.After(m.CreatedAt) {
		return nil, fmt.Errorf("spec /expiresAt: not after createdAt: %w", errdef.ErrInvalid)
	}

	// Resolve the images (their manifests only) while the files are hashed.
	var plan *images.Plan
	var imgErr error
	resolved := make(chan struct{})
	go func() {
		defer close(resolved)
		if len(spec.Images) == 0 {
			return
		}
		log.Info("resolving images", "count", len(spec.Images))
		plan, imgErr = images.Resolve(ctx, spec.Images, images.Options{
			BaseDir:   opts.Dir,
			PlainHTTP: opts.PlainHTTP,
			Log:       log,
		})
	}()
	// The key is decrypted (a cosign key's scrypt takes about 0.2 s and
	// 64 MiB) while the images are resolved, a wait on the registry, and
	// while the files are listed and hashed, unless a source is a folder:
	// the listing of a folder grows with its files, and the two would hold
	// memory at once.
	loadKey := startKey(opts, !listsFolders(spec, opts.Dir))
	// Debug sources of kind image read the images' layers: they wait for
	// the images to be resolved.
	var scan *imageScan
	for _, ds := range spec.Debug {
		if ds.Kind != manifest.DebugKindImage || scan != nil {
			continue
		}
		<-resolved
		if imgErr != nil {
			return nil, imgErr
		}
		tmp, err := os.MkdirTemp(outDir, ".offkit-debug-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		scan = &imageScan{ctx: ctx, plan: plan, tmp: tmp}
	}
	srcs, dbg, fileErr := collectFiles(ctx, spec, opts.Dir, scan)
	var mirrors []manifest.Mirror
	if fileErr == nil {
		var msrcs []source
		msrcs, mirrors, fileErr = collectMirror(ctx, spec.Mirror, opts.Dir, log)
		srcs = append(srcs, msrcs...)
	}
	<-resolved
	if plan != nil {
		defer plan.Close()
	}
	if imgErr != nil {
		return nil, imgErr
	}
	if fileErr != nil {
		return nil, fileErr
	}
	if dbg != nil {
		m.Debug = dbg.list
	}
	m.Mirror = mirrors
	if len(spec.Authority) > 0 {
		asrcs, arecs, err := collectAuthority(ctx, spec, opts.Dir, opts.Now)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, asrcs...)
		m.Authority = arecs
	}
	if plan != nil {
		m.Images = plan.Images
		srcs = append(srcs, imageSources(plan)...)
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].entry.Path < srcs[j].entry.Path })
	for _, s := range srcs {
		m.Entries = append(m.Entries, s.entry)
	}
	key, err := loadKey()
	if err != nil {
		return nil, err
	}
	if key != nil {
		m.Signer = &manifest.Signer{KeyID: key.Public().KeyID()}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkLayout(m, plan); err != nil {
		return nil, err
	}
	mbytes, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if len(mbytes) > manifest.MaxManifestSize {
		// A site would refuse it: fail here, not after packing.
		return nil, fmt.Errorf("kit manifest of %d bytes (%d entries) is over the limit of %d bytes that verify enforces: split the content into several kits: %w",
			len(mbytes), len(m.Entries), manifest.MaxManifestSize, errdef.ErrInvalid)
	}
	var sig []byte
	if key != nil {
		if sig, err = key.SignBlob(mbytes); err != nil {
			return nil, fmt.Errorf("signing manifest: %w", err)
		}
	}

	// What listing the sources left behind (the walk, the names checked
	// for collisions, the hashes' batches) is garbage now: collected before
	// the encoders and frame buffers are made, it leaves them room rather
	// than adding to the peak (53k files: at most 93 MiB over 8 builds,
	// against up to 102 without).
	runtime.GC()
	final := filepath.Join(outDir, m.FileName())
	tmp, err := os.CreateTemp(outDir, ".offkit-kit-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	out := newSumWriter(tmp)
	// The manifest's bytes are dropped once the head is written: on a kit
	// of many entries they are megabytes the frames could use.
	digest := manifest.Digest(mbytes)
	err = pack(ctx, out, m, mbytes, sig, srcs, opts)
	sum := out.close()
	if err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	// A kit is published, not secret: CreateTemp's 0600 would hide it
	// from the courier's and the site's other accounts.
	if err := tmp.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	res := &BuildResult{Path: final, Manifest: m, ManifestDigest: digest, Size: out.n}
	sigPath := final + ".sig"
	os.Remove(sigPath)
	if key != nil {
		fsig, err := key.SignDigest(sum)
		switch {
		case errors.Is(err, sign.ErrNeedsMessage):
			// Ed25519 cannot sign a digest: the manifest's signature, which
			// commits to every byte, is the kit's only one.
			log.Warn("no whole-file signature: an Ed25519 key signs the manifest only", "kit", final)
		case err != nil:
			return nil, fmt.Errorf("signing %s: %w", final, err)
		default:
			if err := os.WriteFile(sigPath, fsig, 0o644); err != nil {
				return nil, err
			}
			res.SignaturePath = sigPath
		}
	}
	log.Info("kit written", "path", final, "bytes", out.n, "entries", len(m.Entries), "manifest", res.ManifestDigest)
	return res, nil
}

// startKey starts loading the key of opts (LoadKey), on a goroutine of its
// own when background is set, else at once, and returns the function that
// waits for it.
func startKey(opts BuildOptions, background bool) func() (*sign.PrivateKey, error) {
	if opts.Key != nil || opts.LoadKey == nil {
		return func() (*sign.PrivateKey, error) { return opts.Key, nil }
	}
	var key *sign.PrivateKey
	var err error
	done := make(chan struct{})
	load := func() {
		defer close(done)
		key, err = opts.LoadKey()
	}
	if background {
		go load()
	} else {
		load()
	}
	return func() (*sign.PrivateKey, error) {
		<-done
		return key, err
	}
}

// listsFolders reports whether a file source of spec (rules, dashboards,
// files, debug) is a folder, or a debug source reads images: its listing
// grows with what it holds.
func listsFolders(spec *manifest.Spec, dir string) bool {
	for _, list := range [][]manifest.FileSource{spec.Rules, spec.Dashboards, spec.Files} {
		for _, fsrc := range list {
			if st, err := os.Stat(abs(dir, fsrc.Src)); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return len(spec.Debug) > 0
}

// pack writes the kit stream: head, then content, each entry's bytes checked
// against the digest the manifest promises.
func pack(ctx context.Context, w io.Writer, m *manifest.Manifest, mbytes, sig []byte, srcs []source, opts BuildOptions) error {
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	kw, err := kitfile.NewWriter(w, m.CreatedAt, kitfile.WriterOptions{
		Level: m.Compression.Level, FrameSize: int(m.Compression.FrameSize), Concurrency: conc,
	})
	if err != nil {
		return err
	}
	defer kw.Close()
	if err := kw.WriteHead(mbytes, sig, m.SumsFile()); err != nil {
		return err
	}
	total, done := m.TotalSize(), int64(0)
	f := startFeed(ctx, srcs)
	defer f.stop()
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addFed(kw, s.entry.Path, s.entry.Size, f); err != nil {
			return err
		}
		done += s.entry.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := f.end(); err != nil {
		return err
	}
	return kw.Close()
}

// sumWriter writes to w, counting, and hashes what it writes on a
// goroutine of its own, so that hashing the kit for its whole-file
// signature overlaps writing it: Write hands p to the hasher, writes it,
// and returns once both are done with it.
type sumWriter struct {
	w    io.Writer
	n    int64
	in   chan []byte
	ack  chan struct{}
	done chan []byte
}

func newSumWriter(w io.Writer) *sumWriter {
	s := &sumWriter{w: w, in: make(chan []byte), ack: make(chan struct{}), done: make(chan []byte, 1)}
	go func() {
		h := sha256.New()
		for p := range s.in {
			h.Write(p)
			s.ack <- struct{}{}
		}
		s.done <- h.Sum(nil)
	}()
	return s
}

func (s *sumWriter) Write(p []byte) (int, error) {
	s.in <- p
	n, err := s.w.Write(p)
	<-s.ack
	s.n += int64(n)
	return n, err
}

// close stops the hasher and returns the SHA-256 of what was written.
func (s *sumWriter) close() []byte {
	close(s.in)
	return <-s.done
}

// imageSources lists the files of the images' OCI layout as entries under
// images/.
func imageSources(plan *images.Plan) []source {
	out := make([]source, 0, len(plan.Files))
	for i := range plan.Files {
		f := &plan.Files[i]
		e := manifest.Entry{Path: "images/" + f.Path, Size: f.Size, SHA256: f.SHA256, Role: manifest.RoleImageIndex}
		if strings.HasPrefix(f.Path, "blobs/") {
			e.Role = manifest.RoleImageBlob
			e.MediaType = f.MediaType
		}
		if f.Path == "index.json" {
			e.MediaType = "application/vnd.oci.image.index.v1+json"
		}
		out = append(out, source{entry: e, image: f})
	}
	return out
}

// checkLayout applies to the images/ part of the kit the rules verify
// applies (internal/ocilayout), so that no kit a site would refuse is
// built.
func checkLayout(m *manifest.Manifest, plan *images.Plan) error {
	l, err := ocilayout.New(m)
	if err != nil {
		return err
	}
	if plan != nil {
		for _, f := range plan.Files {
			if p := "images/" + f.Path; l.Wants(p) {
				l.Add(p, f.Data)
			}
		}
	}
	if _, err := l.Check(); err != nil {
		return fmt.Errorf("image layout of the kit: %w", err)
	}
	return nil
}

// collectFiles walks the file sources of the spec, validating rules and
// dashboards, and reads the debug sources (collectDebug). Mirror exports
// are collectMirror's.
func collectFiles(ctx context.Context, spec *manifest.Spec, dir string, scan *imageScan) ([]source, *debugStore, error) {
	debugTrees := make([]manifest.FileSource, len(spec.Debug))
	for i, d := range spec.Debug {
		debugTrees[i] = d.FileSource()
	}
	groups := []struct {
		field  string
		prefix string
		role   manifest.Role
		list   []manifest.FileSource
	}{
		{"rules", "rules", manifest.RoleRules, spec.Rules},
		{"dashboards", "dashboards", manifest.RoleDashboard, spec.Dashboards},
		{"files", "files", manifest.RoleFile, spec.Files},
		{"debug", "debug", manifest.RoleDebug, debugTrees},
	}
	var out []source
	// The files are hashed as they are listed, on the hasher's goroutines.
	hs := startHasher()
	defer hs.stop()
	// A cancelled build stops hashing at the next read.
	defer context.AfterFunc(ctx, func() { hs.stopped.Store(true) })()
	uids := map[string]string{}
	type origin struct{ path, file, field string }
	seen := map[string]origin{}
	for _, g := range groups {
		for i, fsrc := range g.list {
			if g.role == manifest.RoleDebug && spec.Debug[i].Kind != "" {
				continue // collectDebug's
			}
			field := fmt.Sprintf("spec /%s/%d", g.field, i)
			src := fsrc.Src
			if !filepath.IsAbs(src) {
				src = filepath.Join(dir, src)
			}
			dest := fsrc.Dest
			if dest == "" {
				dest = filepath.Base(filepath.Clean(fsrc.Src))
			}
			dest = strings.Trim(filepath.ToSlash(dest), "/")
			files, err := walkSource(src, fsrc.Symlinks)
			if err != nil {
				return nil, nil, fmt.Errorf("%s/src %q: %w", field, fsrc.Src, err)
			}
			for _, f := range files {
				kp := path.Join(g.prefix, dest, f.rel)
				if err := manifest.CheckPath(kp); err != nil || path.Clean(kp) != kp {
					return nil, nil, fmt.Errorf("%s: kit path %q is not safe: %w", field, kp, errdef.ErrInvalid)
				}
				switch g.role {
				case manifest.RoleRules:
					if err := CheckRules(f.abs); err != nil {
						return nil, nil, fmt.Errorf("%s: %w", field, err)
					}
				case manifest.RoleDashboard:
					uid, err := CheckDashboard(f.abs)
					if err != nil {
						return nil, nil, fmt.Errorf("%s: %w", field, err)
					}
					if prev, ok := uids[uid]; ok && uid != "" {
						return nil, nil, fmt.Errorf("%s: dashboard %s: uid %q is also the uid of %s: %w", field, f.abs, uid, prev, errdef.ErrInvalid)
					}
					uids[uid] = f.abs
				}
				// Two names one file system may take for one (case, Unicode
				// normalisation), or a file where another source has a folder.
				if prev, ok := seen[manifest.Fold(kp)]; ok {
					return nil, nil, fmt.Errorf("%s: kit path %q (from %s) collides with %q (from %s, %s): %w", field, kp, f.abs, prev.path, prev.file, prev.field, errdef.ErrInvalid)
				}
				seen[manifest.Fold(kp)] = origin{kp, f.abs, field}
				out = append(out, source{entry: manifest.Entry{Path: kp, Role: g.role}, file: f.abs})
				hs.add(f.abs)
			}
		}
	}
	dbg, err := collectDebug(spec.Debug, dir, scan)
	if err != nil {
		return nil, nil, err
	}
	plain := len(out)
	for _, s := range dbg.srcs {
		kp := s.entry.Path
		if prev, ok := seen[manifest.Fold(kp)]; ok {
			return nil, nil, fmt.Errorf("%s: kit path %q (from %s) collides with %q (from %s, %s): %w", dbg.field(kp), kp, s.file, prev.path, prev.file, prev.field, errdef.ErrInvalid)
		}
		seen[manifest.Fold(kp)] = origin{kp, s.file, dbg.field(kp)}
		out = append(out, s)
	}
	for _, s := range out {
		for dir := path.Dir(s.entry.Path); dir != "."; dir = path.Dir(dir) {
			if prev, ok := seen[manifest.Fold(dir)]; ok {
				return nil, nil, fmt.Errorf("%s: kit path %q is a file (from %s), but %s puts %q inside it: %w", prev.field, prev.path, prev.file, s.file, s.entry.Path, errdef.ErrInvalid)
			}
		}
	}
	sums, err := hs.wait()
	if cerr := ctx.Err(); cerr != nil {
		return nil, nil, cerr
	}
	if err != nil {
		return nil, nil, err
	}
	for i, r := range sums[:plain] {
		out[i].entry.Size, out[i].entry.SHA256 = r.size, r.sum
	}
	return out, dbg, nil
}

type walked struct{ abs, rel string }

// walkSource lists the regular files of a file or folder; rel is "" for a
// file. Devices, FIFOs and sockets are refused; symbolic links are refused,
// followed or skipped as links says. Errors name the path at fault.
func walkSource(src string, links manifest.Symlinks) ([]walked, error) {
	st, err := os.Lstat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w", errdef.ErrNotFound)
		}
		return nil, err
	}
	if st.Mode()&fs.ModeSymlink != 0 && links == manifest.SymlinksFollow {
		if st, err = os.Stat(src); err != nil {
			return nil, fmt.Errorf("following symlink %s: %w", src, err)
		}
	}
	if st.Mode().IsRegular() {
		return []walked{{abs: src}}, nil
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a regular file or folder: %w", src, errdef.ErrInvalid)
	}
	w := &walker{links: links, visiting: map[string]bool{}}
	err = w.walk(src, "")
	return w.out, err
}

// walker walks a folder, following links into folders when asked; visiting
// holds the real paths of the folders being walked, to refuse a loop.
type walker struct {
	links    manifest.Symlinks
	visiting map[string]bool
	out      []walked
}

func (w *walker) walk(dir, rel string) error {
	// Only a walk that follows links can come back to a folder it is in.
	if w.links == manifest.SymlinksFollow {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return err
		}
		if w.visiting[real] {
			return fmt.Errorf("%s: symlink loop (back to %s): %w", dir, real, errdef.ErrInvalid)
		}
		w.visiting[real] = true
		defer delete(w.visiting, real)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range entries {
		p, r := filepath.Join(dir, d.Name()), path.Join(rel, d.Name())
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			switch w.links {
			case manifest.SymlinksSkip:
				continue
			case manifest.SymlinksFollow:
				st, err := os.Stat(p)
				if err != nil {
					return fmt.Errorf("following symlink %s: %w", p, err)
				}
				mode = st.Mode().Type()
			default:
				return fmt.Errorf("%s: a symbolic link (kits carry regular files only; set symlinks: follow or skip on this source): %w", p, errdef.ErrInvalid)
			}
		}
		switch {
		case mode.IsDir():
			if err := w.walk(p, r); err != nil {
				return err
			}
		case mode.IsRegular():
			w.out = append(w.out, walked{abs: p, rel: r})
		default:
			return fmt.Errorf("%s: not a regular file (devices, FIFOs and sockets are not carried): %w", p, errdef.ErrInvalid)
		}
	}
	return nil
}
