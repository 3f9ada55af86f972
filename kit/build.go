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
	// folder, beside listing the files, so that decrypting the
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

	order packOrder // tests: force one way of writing the kit
}

// BuildResult is what Build wrote.
type BuildResult struct {
	Path           string
	SignaturePath  string // "" for an unsigned kit
	Manifest       *manifest.Manifest
	ManifestDigest string
	Size           int64
}

// source is one content entry and where its bytes come from: a file,
// listed with its size only, whose digest is taken as it is packed (content
// first) or before, by hashListed, and then checked as it is packed; or an
// image file, whose reader checks the bytes itself.
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

	// Resolve the images (their manifests only) while the files are listed.
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
	// while the files are listed, unless a source is a folder:
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
	srcs, dbg, fileErr := collectFiles(spec, opts.Dir, scan)
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
	later := hashWhilePacking(srcs)
	if opts.order != 0 {
		later = opts.order == orderContentFirst
	}
	if !later {
		if err := hashListed(ctx, srcs); err != nil {
			return nil, err
		}
	}
	for _, s := range srcs {
		e := s.entry
		if e.SHA256 == "" {
			// Its digest is taken as it is packed. The placeholder has
			// the length of a digest: the checks below, the manifest's
			// size among them, hold for the manifest written after.
			e.SHA256 = pendingDigest
		}
		m.Entries = append(m.Entries, e)
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

	final := filepath.Join(outDir, m.FileName())
	tmp, err := os.CreateTemp(outDir, ".offkit-kit-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	out := newSumWriter(tmp)
	var digest string
	if later {
		mbytes = nil
		digest, err = packContentFirst(ctx, out, m, srcs, key, outDir, opts)
	} else {
		// The manifest's bytes are dropped once the head is written: on a
		// kit of many entries they are megabytes the frames could use.
		digest = manifest.Digest(mbytes)
		err = pack(ctx, out, m, mbytes, key, srcs, opts)
	}
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
			src := fsrc.Src
			if !filepath.IsAbs(src) {
				src = filepath.Join(dir, src)
			}
			if st, err := os.Stat(src); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return len(spec.Debug) > 0
}

// Which of the two ways of writing a kit Build takes (BuildOptions.order:
// tests set it to check that both write the same bytes).
type packOrder int

const (
	orderAuto         packOrder = iota // as hashWhilePacking says
	orderHashFirst                     // hashListed, then pack
	orderContentFirst                  // packContentFirst
)

// pendingDigest stands for the digest of a file not read yet.
var pendingDigest = strings.Repeat("0", 64)

// hashWhilePacking reports whether Build should take the digests of the
// files it listed as it packs them, rather than read them twice: once to
// hash them for the manifest, which comes first in a kit, and once to pack
// them. Packed first, the content is written to a scratch file, then
// copied after the head: a copy of the compressed kit, and twice its disk
// space until the end. That costs less than a second read and hash once
// the files are at least half the kit's bytes; images and mirror exports,
// whose digests are known, are read once either way.
func hashWhilePacking(srcs []source) bool {
	var listed, total int64
	for _, s := range srcs {
		total += s.entry.Size
		if s.entry.SHA256 == "" {
			listed += s.entry.Size
		}
	}
	return listed > 0 && 2*listed >= total
}

// hashListed takes the digest of every file listed without one, on the
// hasher's goroutines. A file whose size is not the one it was listed with
// has changed since: it is refused, as packing it content first would
// refuse it. A cancelled ctx stops the hashing.
func hashListed(ctx context.Context, srcs []source) error {
	hs := startHasher()
	defer hs.stop()
	defer context.AfterFunc(ctx, func() { hs.stopped.Store(true) })()
	var which []int
	for i, s := range srcs {
		if s.entry.SHA256 == "" {
			hs.add(s.file)
			which = append(which, i)
		}
	}
	sums, err := hs.wait()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	for k, r := range sums {
		s := &srcs[which[k]]
		if r.size != s.entry.Size {
			return fmt.Errorf("hashing %s: %d bytes, listed with %d (did the file change?): %w", s.file, r.size, s.entry.Size, errdef.ErrDigestMismatch)
		}
		s.entry.SHA256 = r.sum
	}
	return nil
}

// newKitWriter returns the kit writer of m's compression settings.
func newKitWriter(w io.Writer, m *manifest.Manifest, opts BuildOptions) (*kitfile.Writer, error) {
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	return kitfile.NewWriter(w, m.CreatedAt, kitfile.WriterOptions{
		Level: m.Compression.Level, FrameSize: int(m.Compression.FrameSize), Concurrency: conc,
	})
}

// signManifest signs the manifest's bytes; an unsigned kit (key nil) has no
// signature.
func signManifest(key *sign.PrivateKey, mbytes []byte) ([]byte, error) {
	if key == nil {
		return nil, nil
	}
	sig, err := key.SignBlob(mbytes)
	if err != nil {
		return nil, fmt.Errorf("signing manifest: %w", err)
	}
	return sig, nil
}

// pack writes the kit stream: head, then content, each entry's bytes checked
// against the digest the manifest promises.
func pack(ctx context.Context, w io.Writer, m *manifest.Manifest, mbytes []byte, key *sign.PrivateKey, srcs []source, opts BuildOptions) error {
	sig, err := signManifest(key, mbytes)
	if err != nil {
		return err
	}
	kw, err := newKitWriter(w, m, opts)
	if err != nil {
		return err
	}
	defer kw.Close()
	if err := kw.WriteHead(mbytes, sig, m.SumsFile()); err != nil {
		return err
	}
	if _, err := packEntries(ctx, kw, srcs, m.TotalSize(), opts); err != nil {
		return err
	}
	return kw.Close()
}

// packContentFirst writes the kit stream content first: the entries go to
// a scratch file in dir, each file's digest taken as it is packed; then the
// manifest, which lists those digests, is written, signed and packed as the
// head, followed by the scratch file's frames as they are. It returns the
// manifest's digest.
func packContentFirst(ctx context.Context, w io.Writer, m *manifest.Manifest, srcs []source, key *sign.PrivateKey, dir string, opts BuildOptions) (string, error) {
	scratch, err := os.CreateTemp(dir, ".offkit-content-")
	if err != nil {
		return "", err
	}
	defer os.Remove(scratch.Name())
	defer scratch.Close()
	cw, err := newKitWriter(scratch, m, opts)
	if err != nil {
		return "", err
	}
	defer cw.Close()
	digests, err := packEntries(ctx, cw, srcs, m.TotalSize(), opts)
	if err != nil {
		return "", err
	}
	frames, err := cw.CloseContent()
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", scratch.Name(), err)
	}
	for i, s := range srcs {
		if s.entry.SHA256 == "" {
			if digests[i] == "" {
				return "", fmt.Errorf("packing %s: no digest taken", s.entry.Path)
			}
			m.Entries[i].SHA256 = digests[i]
		}
	}
	mbytes, err := m.Encode()
	if err != nil {
		return "", err
	}
	sig, err := signManifest(key, mbytes)
	if err != nil {
		return "", err
	}
	if _, err := scratch.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	// Only the head is compressed here, the rest is copied: one encoder
	// holds half the memory of two, when the manifest and SHA256SUMS of a
	// kit of many files are held too, and costs little time (the 15 MB
	// head of 53k files: about 30 ms more).
	hopts := opts
	hopts.Concurrency = 1
	kw, err := newKitWriter(w, m, hopts)
	if err != nil {
		return "", err
	}
	defer kw.Close()
	if err := kw.WriteHead(mbytes, sig, m.SumsFile()); err != nil {
		return "", err
	}
	// The copy takes as long as writing the kit again: it stops when ctx
	// is cancelled, as packing does.
	if err := kw.CopyFrames(ctxReader{ctx, scratch}, frames); err != nil {
		return "", err
	}
	if err := kw.Close(); err != nil {
		return "", err
	}
	return manifest.Digest(mbytes), nil
}

// ctxReader reads r until ctx is cancelled, then returns ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// packEntries writes the entries of srcs to kw, in order, through a feed,
// and returns the digests the feed took (hex; "" for a source whose digest
// was known, which the feed checked instead), by index in srcs.
func packEntries(ctx context.Context, kw *kitfile.Writer, srcs []source, total int64, opts BuildOptions) ([]string, error) {
	done := int64(0)
	f := startFeed(ctx, srcs)
	defer f.stop()
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := addFed(kw, s.entry.Path, s.entry.Size, f); err != nil {
			return nil, err
		}
		done += s.entry.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := f.end(); err != nil {
		return nil, err
	}
	return f.digests, nil
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
// are collectMirror's. A walked file's source has the size the file had
// when listed and no digest yet.
func collectFiles(spec *manifest.Spec, dir string, scan *imageScan) ([]source, *debugStore, error) {
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
				// The digest is taken later: as the file is packed, or
				// by hashListed (see hashWhilePacking).
				out = append(out, source{entry: manifest.Entry{Path: kp, Role: g.role, Size: f.size}, file: f.abs})
			}
		}
	}
	dbg, err := collectDebug(spec.Debug, dir, scan)
	if err != nil {
		return nil, nil, err
	}
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
	return out, dbg, nil
}

// walked is a regular file a walk found: its path, its path below the
// walk's root ("" for a file walked alone) and its size then.
type walked struct {
	abs, rel string
	size     int64
}

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
		return []walked{{abs: src, size: st.Size()}}, nil
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
		var st fs.FileInfo
		if mode&fs.ModeSymlink != 0 {
			switch w.links {
			case manifest.SymlinksSkip:
				continue
			case manifest.SymlinksFollow:
				var err error
				if st, err = os.Stat(p); err != nil {
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
			if st == nil {
				var err error
				if st, err = d.Info(); err != nil {
					return err
				}
			}
			w.out = append(w.out, walked{abs: p, rel: r, size: st.Size()})
		default:
			return fmt.Errorf("%s: not a regular file (devices, FIFOs and sockets are not carried): %w", p, errdef.ErrInvalid)
		}
	}
	return nil
}
