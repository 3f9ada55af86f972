// Package kit builds, packs and reads offkit kits: one deterministic tar in
// seekable zstd frames, `NAME-VERSION.kit.tar.zst`, laid out as DESIGN.md
// says: offkit/manifest.json, offkit/manifest.json.sig, SHA256SUMS, then the
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
	"encoding/hex"
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
	// Key signs the manifest and the whole file; nil builds an unsigned kit.
	Key *sign.PrivateKey
	// SourceDateEpoch is the kit's time when the spec has no createdAt.
	SourceDateEpoch *time.Time
	// PlainHTTP pulls every registry image over http.
	PlainHTTP bool
	// Concurrency of frame compression; 0 means GOMAXPROCS. It never
	// changes the bytes.
	Concurrency int
	// TempDir holds the image staging area; "" means OutDir.
	TempDir string
	Builder manifest.Builder
	Log     *slog.Logger
	// Progress is called with the bytes packed so far and the total.
	Progress func(done, total int64)
}

// BuildResult is what Build wrote.
type BuildResult struct {
	Path           string
	SignaturePath  string // "" for an unsigned kit
	Manifest       *manifest.Manifest
	ManifestDigest string
	Size           int64
}

// source is one content entry and where its bytes come from.
type source struct {
	entry manifest.Entry
	file  string
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
	tmpRoot := opts.TempDir
	if tmpRoot == "" {
		tmpRoot = outDir
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	staging, err := os.MkdirTemp(tmpRoot, ".offkit-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

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
	if opts.Key != nil {
		m.Signer = &manifest.Signer{KeyID: opts.Key.Public().KeyID()}
	}

	var srcs []source
	if len(spec.Images) > 0 {
		layout := filepath.Join(staging, "images")
		log.Info("collecting images", "count", len(spec.Images))
		imgs, err := images.Collect(ctx, spec.Images, layout, images.Options{
			BaseDir:   opts.Dir,
			PlainHTTP: opts.PlainHTTP,
			Log:       log,
		})
		if err != nil {
			return nil, err
		}
		m.Images = imgs
		s, err := layoutSources(layout)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, s...)
	}
	fileSrcs, err := collectFiles(spec, opts.Dir)
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, fileSrcs...)
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].entry.Path < srcs[j].entry.Path })
	for _, s := range srcs {
		m.Entries = append(m.Entries, s.entry)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	mbytes, err := m.Encode()
	if err != nil {
		return nil, err
	}
	var sig []byte
	if opts.Key != nil {
		if sig, err = opts.Key.SignBlob(mbytes); err != nil {
			return nil, fmt.Errorf("signing manifest: %w", err)
		}
	}

	final := filepath.Join(outDir, m.FileName())
	tmp, err := os.CreateTemp(outDir, ".offkit-kit-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	counter := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := pack(ctx, counter, m, mbytes, sig, srcs, opts); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	res := &BuildResult{Path: final, Manifest: m, ManifestDigest: manifest.Digest(mbytes), Size: counter.n}
	sigPath := final + ".sig"
	os.Remove(sigPath)
	if opts.Key != nil {
		fsig, err := opts.Key.SignDigest(h.Sum(nil))
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
	log.Info("kit written", "path", final, "bytes", counter.n, "entries", len(m.Entries), "manifest", res.ManifestDigest)
	return res, nil
}

// pack writes the kit stream: head, then content, each entry's bytes checked
// against the digest the manifest promises.
func pack(ctx context.Context, w io.Writer, m *manifest.Manifest, mbytes, sig []byte, srcs []source, opts BuildOptions) error {
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	p, err := newPacker(w, m.CreatedAt, m.Compression.Level, int(m.Compression.FrameSize), conc)
	if err != nil {
		return err
	}
	defer p.zw.Close()
	sums := m.SHA256SUMS()
	if err := p.addHead(ManifestPath, mbytes); err != nil {
		return err
	}
	if sig != nil {
		if err := p.addHead(SignaturePath, sig); err != nil {
			return err
		}
	}
	if err := p.addHead(SumsPath, sums); err != nil {
		return err
	}
	if err := p.flushFrame(); err != nil {
		return err
	}
	total, done := m.TotalSize(), int64(0)
	h := sha256.New()
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(s.file)
		if err != nil {
			return err
		}
		h.Reset()
		err = p.add(s.entry.Path, s.entry.Size, io.TeeReader(f, h))
		f.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != s.entry.SHA256 {
			return fmt.Errorf("source %s changed while the kit was built: %w", s.file, errdef.ErrDigestMismatch)
		}
		done += s.entry.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return p.close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// layoutSources lists the files of the staged OCI layout as image entries.
func layoutSources(layout string) ([]source, error) {
	var out []source
	err := filepath.WalkDir(layout, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(layout, p)
		if err != nil {
			return err
		}
		rel = "images/" + filepath.ToSlash(rel)
		role, mt := manifest.RoleImageIndex, ""
		if strings.HasPrefix(rel, "images/blobs/") {
			role = manifest.RoleImageBlob
		}
		if rel == "images/index.json" {
			mt = "application/vnd.oci.image.index.v1+json"
		}
		var e manifest.Entry
		if hexd, ok := strings.CutPrefix(rel, "images/blobs/sha256/"); ok && len(hexd) == 64 {
			// Collect verified the digest as it wrote the blob, and pack
			// checks it again as it reads: no third pass here.
			info, err := d.Info()
			if err != nil {
				return err
			}
			e = manifest.Entry{Path: rel, Size: info.Size(), SHA256: hexd, Role: role}
		} else if e, err = hashEntry(p, rel, role); err != nil {
			return err
		}
		e.MediaType = mt
		out = append(out, source{entry: e, file: p})
		return nil
	})
	return out, err
}

func hashEntry(file, kitPath string, role manifest.Role) (manifest.Entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return manifest.Entry{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return manifest.Entry{}, fmt.Errorf("reading %s: %w", file, err)
	}
	return manifest.Entry{Path: kitPath, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Role: role}, nil
}

// collectFiles walks the file sources of the spec, validating rules and
// dashboards.
func collectFiles(spec *manifest.Spec, dir string) ([]source, error) {
	groups := []struct {
		field  string
		prefix string
		role   manifest.Role
		list   []manifest.FileSource
	}{
		{"rules", "rules", manifest.RoleRules, spec.Rules},
		{"dashboards", "dashboards", manifest.RoleDashboard, spec.Dashboards},
		{"files", "files", manifest.RoleFile, spec.Files},
		{"mirror", "mirror", manifest.RoleMirror, spec.Mirror},
		{"debug", "debug", manifest.RoleDebug, spec.Debug},
	}
	var out []source
	uids := map[string]string{}
	for _, g := range groups {
		for i, fsrc := range g.list {
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
			files, err := walkSource(src)
			if err != nil {
				return nil, fmt.Errorf("%s/src %q: %w", field, fsrc.Src, err)
			}
			for _, f := range files {
				kp := path.Join(g.prefix, dest, f.rel)
				if err := manifest.CheckPath(kp); err != nil || path.Clean(kp) != kp {
					return nil, fmt.Errorf("%s: kit path %q is not safe: %w", field, kp, errdef.ErrInvalid)
				}
				switch g.role {
				case manifest.RoleRules:
					if err := CheckRules(f.abs); err != nil {
						return nil, fmt.Errorf("%s: %w", field, err)
					}
				case manifest.RoleDashboard:
					uid, err := CheckDashboard(f.abs)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", field, err)
					}
					if prev, ok := uids[uid]; ok && uid != "" {
						return nil, fmt.Errorf("%s: dashboard %s: uid %q is also the uid of %s: %w", field, f.abs, uid, prev, errdef.ErrInvalid)
					}
					uids[uid] = f.abs
				}
				e, err := hashEntry(f.abs, kp, g.role)
				if err != nil {
					return nil, err
				}
				out = append(out, source{entry: e, file: f.abs})
			}
		}
	}
	seen := map[string]string{}
	for _, s := range out {
		if prev, ok := seen[s.entry.Path]; ok {
			return nil, fmt.Errorf("kit path %q comes from both %s and %s: %w", s.entry.Path, prev, s.file, errdef.ErrInvalid)
		}
		seen[s.entry.Path] = s.file
	}
	return out, nil
}

type walked struct{ abs, rel string }

// walkSource lists the regular files of a file or folder; rel is "" for a
// file. Symlinks, devices and other special files are refused.
func walkSource(src string) ([]walked, error) {
	st, err := os.Lstat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w", errdef.ErrNotFound)
		}
		return nil, err
	}
	if st.Mode().IsRegular() {
		return []walked{{abs: src}}, nil
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("not a regular file or folder: %w", errdef.ErrInvalid)
	}
	var out []walked
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (symlinks and special files are not carried): %w", p, errdef.ErrInvalid)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out = append(out, walked{abs: p, rel: filepath.ToSlash(rel)})
		return nil
	})
	return out, err
}
