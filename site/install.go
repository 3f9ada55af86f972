package site

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/mod/semver"
	"golang.org/x/sys/unix"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// MaxImageIndex bounds a kit's images/index.json.
const MaxImageIndex = 16 << 20

// InstallOptions configure Install.
type InstallOptions struct {
	Keys []*sign.PublicKey
	// ImageKeys, when set, are the trusted keys of the images' cosign
	// signatures (verify.Options.ImageKeys).
	ImageKeys []*sign.PublicKey
	// DryRun verifies and reports without writing anything.
	DryRun bool
	// Force activates a version that is not newer than the installed one;
	// Reason is recorded in audit.log and required with Force.
	Force  bool
	Reason string
	// Now judges expiry; zero means time.Now().
	Now         time.Time
	Concurrency int
	Progress    func(done, total int64)
}

// InstallResult reports an install.
type InstallResult struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	ManifestDigest string `json:"manifestDigest"`
	Generation     int    `json:"generation"`
	Previous       string `json:"previousVersion,omitempty"`
	// AlreadyActive: the very kit was active; nothing was done.
	AlreadyActive bool  `json:"alreadyActive,omitempty"`
	DryRun        bool  `json:"dryRun,omitempty"`
	Forced        bool  `json:"forced,omitempty"`
	Entries       int   `json:"entries"`
	Bytes         int64 `json:"bytes"`
	BlobsNew      int   `json:"blobsNew"`
	BlobsShared   int   `json:"blobsShared"`
}

var errAlreadyActive = errors.New("already active")

func newer(a, b string) bool {
	if b == "" {
		return true
	}
	return semver.Compare("v"+a, "v"+b) > 0
}

// Install verifies the kit at kitPath while writing it into staging, then
// makes it active in a new generation. See the package doc for the crash
// guarantees.
func (s *Site) Install(ctx context.Context, kitPath string, opts InstallOptions) (*InstallResult, error) {
	if opts.Force && strings.TrimSpace(opts.Reason) == "" {
		return nil, fmt.Errorf("--force-activate needs --force-reason: %w", errdef.ErrInvalid)
	}
	st, err := s.readState()
	if err != nil {
		return nil, err
	}
	cur := st.Generation
	var prevKits map[string]*kitFiles
	if cur > 0 {
		if prevKits, err = s.kitFiles(cur); err != nil {
			return nil, err
		}
	}
	res := &InstallResult{DryRun: opts.DryRun}

	var stage *stager
	if !opts.DryRun {
		tx := make([]byte, 8)
		rand.Read(tx)
		dir := s.path(stagingDir, hex.EncodeToString(tx))
		if err := os.MkdirAll(filepath.Join(dir, "tree"), 0o755); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		stage, err = newStager(dir, s.path(storeBlobs))
		if err != nil {
			return nil, err
		}
		defer stage.close()
	}

	var m *manifest.Manifest
	var mbytes []byte
	// Refusals by policy (version, paths) are not verification failures:
	// they leave no quarantine record.
	var policyErr error
	var checkPolicy func(vm *manifest.Manifest, raw []byte) error
	vopts := verify.Options{
		Keys:        opts.Keys,
		ImageKeys:   opts.ImageKeys,
		Now:         opts.Now,
		Concurrency: opts.Concurrency,
		Progress:    opts.Progress,
		OnManifest: func(vm *manifest.Manifest, raw []byte) error {
			m, mbytes = vm, raw
			policyErr = checkPolicy(vm, raw)
			return policyErr
		},
	}
	checkPolicy = func(vm *manifest.Manifest, raw []byte) error {
		res.Name, res.Version, res.ManifestDigest = vm.Name, vm.Version, manifest.Digest(raw)
		for _, k := range st.Kits {
			if k.Name == vm.Name {
				res.Previous = k.Version
				if k.ManifestDigest == res.ManifestDigest {
					return errAlreadyActive
				}
			}
		}
		if hw := st.HighWater[vm.Name]; !newer(vm.Version, hw) {
			if !opts.Force {
				return fmt.Errorf("kit %s %s: installed high-water version is %s (use --force-activate --force-reason): %w", vm.Name, vm.Version, hw, errdef.ErrNotNewer)
			}
			res.Forced = true
		}
		// Two kits may not claim one path.
		for name, kf := range prevKits {
			if name == vm.Name {
				continue
			}
			for _, e := range vm.Entries {
				if e.Role == manifest.RoleImageBlob || e.Role == manifest.RoleImageIndex {
					continue
				}
				if kf.paths[e.Path] {
					return fmt.Errorf("entry %q: already installed by kit %s: %w", e.Path, name, errdef.ErrInvalid)
				}
			}
		}
		return nil
	}
	if stage != nil {
		vopts.Sink = stage
	}
	vres, err := verify.File(ctx, kitPath, vopts)
	if errors.Is(err, errAlreadyActive) {
		res.AlreadyActive = true
		res.Generation = cur
		return res, nil
	}
	if err != nil {
		if q := errdef.ExitCode(err); policyErr == nil && (q == errdef.ExitMismatch || q == errdef.ExitSignature || q == errdef.ExitInvalid) {
			if !opts.DryRun {
				if qerr := s.quarantine(kitPath, err); qerr != nil {
					return nil, fmt.Errorf("%w (and quarantine failed: %v)", err, qerr)
				}
			}
		}
		return nil, err
	}
	res.Entries, res.Bytes = vres.Entries, vres.Bytes
	if opts.DryRun {
		res.Generation = cur
		return res, nil
	}
	res.BlobsNew, res.BlobsShared = stage.newBlobs, stage.sharedBlobs
	gen, err := s.commit(ctx, st, prevKits, m, mbytes, stage, opts, res)
	if err != nil {
		return nil, err
	}
	res.Generation = gen
	return res, nil
}

// commit makes the staged kit the new generation and switches to it.
func (s *Site) commit(ctx context.Context, st *State, prevKits map[string]*kitFiles, m *manifest.Manifest, mbytes []byte, stage *stager, opts InstallOptions, res *InstallResult) (int, error) {
	// 1. Blobs into the shared store.
	if err := stage.publishBlobs(); err != nil {
		return 0, err
	}
	// 2. The new generation's tree: this kit's files are already in
	// stage/tree; the other kits' files are linked from the current one.
	tree := filepath.Join(stage.dir, "tree")
	cur := st.Generation
	for name, kf := range prevKits {
		if name == m.Name {
			continue
		}
		for p := range kf.paths {
			src := s.path(genDir, strconv.Itoa(cur), filepath.FromSlash(p))
			dst := filepath.Join(tree, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return 0, err
			}
			if err := os.Link(src, dst); err != nil {
				return 0, fmt.Errorf("carrying %s of kit %s into the new generation: %w", p, name, err)
			}
		}
		if err := copyDir(s.path(genDir, strconv.Itoa(cur), metaDir, "kits", name), filepath.Join(tree, metaDir, "kits", name)); err != nil {
			return 0, err
		}
	}
	kdir := filepath.Join(tree, metaDir, "kits", m.Name)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(kdir, "manifest.json"), mbytes, 0o444); err != nil {
		return 0, err
	}
	if stage.index != nil {
		if err := os.WriteFile(filepath.Join(kdir, "index.json"), stage.index, 0o444); err != nil {
			return 0, err
		}
	}
	// 3. The generation's image index and state.
	idx, err := mergeIndexes(filepath.Join(tree, metaDir, "kits"))
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(tree, metaDir, "images"), 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(tree, metaDir, "images", "index.json"), idx, 0o444); err != nil {
		return 0, err
	}
	gens, err := s.generations()
	if err != nil {
		return 0, err
	}
	next := cur + 1
	if len(gens) > 0 && gens[len(gens)-1] >= next {
		next = gens[len(gens)-1] + 1
	}
	nst := &State{Generation: next, HighWater: map[string]string{}}
	for k, v := range st.HighWater {
		nst.HighWater[k] = v
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, k := range st.Kits {
		if k.Name != m.Name {
			nst.Kits = append(nst.Kits, k)
		}
	}
	imgs := len(m.Images)
	nst.Kits = append(nst.Kits, KitState{
		Name: m.Name, Version: m.Version, ManifestDigest: manifest.Digest(mbytes),
		CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, StalenessWindowHours: m.StalenessWindowHours,
		InstalledAt: now, Forced: res.Forced, Entries: res.Entries, Bytes: res.Bytes, Images: imgs,
	})
	if newer(m.Version, nst.HighWater[m.Name]) {
		nst.HighWater[m.Name] = m.Version
	}
	if err := os.WriteFile(filepath.Join(tree, metaDir, stateFile), encodeState(nst), 0o444); err != nil {
		return 0, err
	}
	// 4. Durable, then visible.
	if err := syncfs(s.root); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	gdir := s.path(genDir, strconv.Itoa(next))
	if err := os.Rename(tree, gdir); err != nil {
		return 0, err
	}
	if err := atomicfile.SyncDir(s.path(genDir)); err != nil {
		return 0, err
	}
	if err := s.switchTo(next); err != nil {
		return 0, err
	}
	// After the commit point: derived files, then clean-up.
	if err := s.writeState(nst); err != nil {
		return 0, err
	}
	if err := atomicfile.WriteFile(s.path("store/oci/index.json"), idx, 0o644); err != nil {
		return 0, err
	}
	fields := map[string]any{"kit": m.Name, "version": m.Version, "manifestDigest": manifest.Digest(mbytes), "generation": next}
	if res.Previous != "" {
		fields["previousVersion"] = res.Previous
	}
	event := "install"
	if res.Forced {
		event = "forced-activation"
		fields["reason"] = opts.Reason
	}
	if err := s.audit(event, fields); err != nil {
		return 0, err
	}
	// Keep the new generation and the one it replaced (for rollback).
	gens, _ = s.generations()
	for _, g := range gens {
		if g != next && g != cur {
			os.RemoveAll(s.path(genDir, strconv.Itoa(g)))
		}
	}
	return next, nil
}

// kitFiles is what one active kit owns in a generation.
type kitFiles struct {
	paths map[string]bool
}

// kitFiles reads the manifests of the kits active in generation n.
func (s *Site) kitFiles(n int) (map[string]*kitFiles, error) {
	dir := s.path(genDir, strconv.Itoa(n), metaDir, "kits")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", n, err)
	}
	out := map[string]*kitFiles{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "manifest.json"))
		if err != nil {
			return nil, err
		}
		m, err := manifest.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("generation %d, kit %s: %w", n, e.Name(), err)
		}
		kf := &kitFiles{paths: map[string]bool{}}
		for _, en := range m.Entries {
			if en.Role != manifest.RoleImageBlob && en.Role != manifest.RoleImageIndex {
				kf.paths[en.Path] = true
			}
		}
		out[m.Name] = kf
	}
	return out, nil
}

// mergeIndexes merges the image indexes of the kits under dir into one,
// annotating each descriptor with the kit that carries it.
func mergeIndexes(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	out.SchemaVersion = 2
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "index.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("kit %s: images/index.json: %v: %w", e.Name(), err, errdef.ErrInvalid)
		}
		for _, d := range idx.Manifests {
			ann := map[string]string{}
			for k, v := range d.Annotations {
				ann[k] = v
			}
			ann["dev.offkit.kit"] = e.Name()
			d.Annotations = ann
			out.Manifests = append(out.Manifests, d)
		}
	}
	sort.SliceStable(out.Manifests, func(i, j int) bool {
		a, b := out.Manifests[i].Annotations[ocispec.AnnotationRefName], out.Manifests[j].Annotations[ocispec.AnnotationRefName]
		if a != b {
			return a < b
		}
		return out.Manifests[i].Digest < out.Manifests[j].Digest
	})
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return os.Link(p, target)
	})
}

func syncfs(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// stager is the verify.Sink of an install: it writes entries into the
// staging folder, confined with os.Root, and skips blobs the store has.
type stager struct {
	dir         string
	root        *os.Root
	store       string
	blobs       []string
	index       []byte
	newBlobs    int
	sharedBlobs int
}

func newStager(dir, store string) (*stager, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if err := r.MkdirAll("blobs", 0o755); err != nil {
		r.Close()
		return nil, err
	}
	return &stager{dir: dir, root: r, store: store}, nil
}

func (st *stager) close() { st.root.Close() }

// Entry implements verify.Sink.
func (st *stager) Entry(ctx context.Context, e manifest.Entry, r io.Reader) error {
	switch {
	case e.Path == "images/oci-layout":
		_, err := io.Copy(io.Discard, r)
		return err
	case e.Path == "images/index.json":
		b, err := io.ReadAll(io.LimitReader(r, MaxImageIndex+1))
		if err != nil {
			return err
		}
		if len(b) > MaxImageIndex {
			return fmt.Errorf("over %d bytes: %w", MaxImageIndex, errdef.ErrInvalid)
		}
		st.index = b
		return nil
	case strings.HasPrefix(e.Path, "images/"):
		hexd, ok := strings.CutPrefix(e.Path, "images/blobs/sha256/")
		if !ok || len(hexd) != 64 || hexd != e.SHA256 {
			return fmt.Errorf("not a blob named by its digest: %w", errdef.ErrInvalid)
		}
		if _, err := os.Stat(filepath.Join(st.store, hexd)); err == nil {
			st.sharedBlobs++
			_, err := io.Copy(io.Discard, r)
			return err
		}
		st.newBlobs++
		st.blobs = append(st.blobs, hexd)
		return atomicfile.WriteNew(st.root, path.Join("blobs", hexd), r)
	}
	return atomicfile.WriteNew(st.root, path.Join("tree", e.Path), r)
}

// publishBlobs moves verified blobs into the store.
func (st *stager) publishBlobs() error {
	for _, hexd := range st.blobs {
		dst := filepath.Join(st.store, hexd)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(st.dir, "blobs", hexd), dst); err != nil {
			return err
		}
	}
	return nil
}

// KitDir returns the folder of the current generation ("" when nothing is
// installed).
func (s *Site) KitDir() string {
	n, err := s.currentGeneration()
	if err != nil || n == 0 {
		return ""
	}
	return s.path(genDir, strconv.Itoa(n))
}
