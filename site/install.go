package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/ocidir"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

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
	// Now judges expiry and is the install's clock (installedAt, when the
	// replaced generation stops being current); zero means time.Now().
	Now time.Time
	// Grace is how long a generation that stopped being current is kept for
	// readers before this install may remove it; zero means DefaultGrace,
	// a negative value removes such generations at once. The generation
	// being replaced is always kept, for rollback.
	Grace time.Duration
	// KeepExports is how many feed-mirror exports of each kind the new
	// generation keeps: those of the active kits always, and exports a
	// kit's new version dropped (retained, newest first) while the kind has
	// fewer; zero means DefaultKeepExports. 1 retains none.
	KeepExports int
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
	// AlreadyActive: the very kit was active (and complete); nothing was done.
	AlreadyActive bool `json:"alreadyActive,omitempty"`
	// RollForward: after a rollback, the very kit that set the high-water
	// mark (same manifest digest) was activated again, without force.
	RollForward bool  `json:"rollForward,omitempty"`
	DryRun      bool  `json:"dryRun,omitempty"`
	Forced      bool  `json:"forced,omitempty"`
	Entries     int   `json:"entries"`
	Bytes       int64 `json:"bytes"`
	BlobsNew    int   `json:"blobsNew"`
	BlobsShared int   `json:"blobsShared"`
	// Authority lists the Authority snapshots the installed kit carries
	// (its manifest's authority[]), for the caller to import: the
	// manifest need not be read and parsed again.
	Authority []manifest.Authority `json:"-"`
}

var errAlreadyActive = errors.New("already active")

// errReadOnly refuses a change through a Site opened by OpenReadOnly.
var errReadOnly = fmt.Errorf("site opened read-only: only a dry run: %w", errdef.ErrInvalid)

func newer(a, b string) bool {
	if b == "" {
		return true
	}
	return semver.Compare("v"+a, "v"+b) > 0
}

// Install verifies the kit at kitPath while writing it into staging, then
// makes it active in a new generation. See the package doc for the rules
// and the crash guarantees.
func (s *Site) Install(ctx context.Context, kitPath string, opts InstallOptions) (res *InstallResult, err error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now() // the one reading of the clock
	}
	opts.Now = opts.Now.UTC()
	if s.created != "" {
		// A root this Open created is removed again unless a kit was
		// installed in it.
		defer func() {
			if gen, _ := s.currentGeneration(); gen == 0 && (err != nil || opts.DryRun) {
				os.RemoveAll(s.created)
			}
			s.created = ""
		}()
	}
	if opts.Force && strings.TrimSpace(opts.Reason) == "" {
		return nil, fmt.Errorf("--force-activate needs --force-reason: %w", errdef.ErrInvalid)
	}
	if s.readOnly && !opts.DryRun {
		return nil, errReadOnly
	}
	var st *State
	if s.readOnly {
		// No lock, no recovery: check against what `current` holds.
		snap, err := s.Snapshot()
		if err != nil {
			return nil, err
		}
		st = snap.State
	} else if st, err = s.readState(); err != nil {
		return nil, err
	}
	cur := st.Generation
	var active []*activeKit
	if cur > 0 {
		if active, err = s.activeKits(cur); err != nil {
			return nil, err
		}
	}
	res = &InstallResult{DryRun: opts.DryRun}

	var stage *stager
	if !opts.DryRun {
		dir := s.path(stagingDir, randHex(8))
		if err := os.MkdirAll(filepath.Join(dir, "tree"), 0o755); err != nil {
			return nil, err
		}
		stage, err = newStager(dir, s.path(storeBlobs))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		defer func() {
			stage.close()
			if !stage.keep {
				os.RemoveAll(dir)
			}
		}()
	}

	var m *manifest.Manifest
	// Refusals by policy (version, paths, tags) are not verification
	// failures: they leave no quarantine record.
	var policyErr error
	var checkPolicy func(vm *manifest.Manifest, raw []byte) error
	vopts := verify.Options{
		Keys:        opts.Keys,
		ImageKeys:   opts.ImageKeys,
		Now:         opts.Now,
		Concurrency: opts.Concurrency,
		Progress:    opts.Progress,
		OnManifest: func(vm *manifest.Manifest, raw []byte) error {
			m = vm
			if policyErr = checkPolicy(vm, raw); policyErr != nil {
				return policyErr
			}
			if stage == nil {
				return nil
			}
			// Staged now rather than kept for commit: a large kit's
			// manifest is megabytes that need not stay in memory while
			// its content streams.
			return os.WriteFile(filepath.Join(stage.dir, stagedManifest), raw, 0o444)
		},
	}
	checkPolicy = func(vm *manifest.Manifest, raw []byte) error {
		res.Name, res.Version, res.ManifestDigest = vm.Name, vm.Version, manifest.Digest(raw)
		repair := false
		for _, k := range st.Kits {
			if k.Name == vm.Name {
				res.Previous = k.Version
				if k.ManifestDigest == res.ManifestDigest {
					// Active, unless its files are not all there: then
					// this install repairs it in a new generation.
					if s.checkGeneration(cur, vm.Name) == nil {
						return errAlreadyActive
					}
					repair = true
				}
			}
		}
		hw := st.HighWater[vm.Name]
		switch {
		case repair || newer(vm.Version, hw):
		case st.HighWaterDigest[vm.Name] == res.ManifestDigest:
			// The kit that set the mark, again (after a rollback).
			res.RollForward = true
		default:
			if !opts.Force {
				set := ""
				if d := st.HighWaterDigest[vm.Name]; d != "" {
					set = ", set by manifest " + d + ", the only kit of that version that may return without force"
				}
				return fmt.Errorf("kit %s %s (manifest %s): installed high-water version is %s%s (use --force-activate --force-reason): %w", vm.Name, vm.Version, res.ManifestDigest, hw, set, errdef.ErrNotNewer)
			}
			res.Forced = true
		}
		if err := checkPaths(vm, active); err != nil {
			return err
		}
		if err := checkMirror(vm, active); err != nil {
			return err
		}
		return checkTags(vm, nil, active)
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
		if policyErr == nil && kitIsBad(err) {
			if !opts.DryRun {
				if qerr := s.quarantine(kitPath, err, opts.Now); qerr != nil {
					return nil, fmt.Errorf("%w (and quarantine failed: %v)", err, qerr)
				}
			}
		}
		return nil, err
	}
	if stage != nil {
		if err := stage.writer.wait(); err != nil {
			return nil, err
		}
	}
	res.Entries, res.Bytes = vres.Entries, vres.Bytes
	if opts.DryRun {
		res.Generation = cur
		return res, nil
	}
	res.BlobsNew, res.BlobsShared = len(stage.images.Blobs()), stage.images.Shared()
	stage.index = vres.ImageIndex
	gen, err := s.commit(ctx, st, active, m, stage, opts, res)
	if err != nil {
		return nil, err
	}
	res.Generation, res.Authority = gen, m.Authority
	return res, nil
}

// stagedManifest is the file in staging that holds the kit's manifest
// until commit moves it into the new generation.
const stagedManifest = "manifest.json"

// commit makes the staged kit the new generation and switches to it. It
// first does, inside staging, everything that can refuse the kit; then it
// publishes the new blobs (journaled), and undoes them if anything fails
// before the switch.
func (s *Site) commit(ctx context.Context, st *State, active []*activeKit, m *manifest.Manifest, stage *stager, opts InstallOptions, res *InstallResult) (int, error) {
	now := opts.Now
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	// 1. The new generation's tree, in staging: this kit's files are
	// already in stage/tree; the other kits' files are linked from the
	// current generation.
	if err := checkTags(m, stage.index, active); err != nil {
		return 0, err
	}
	tree := filepath.Join(stage.dir, "tree")
	cur := st.Generation
	for _, k := range active {
		if k.name == m.Name {
			continue
		}
		if err := copyDir(s.path(genDir, strconv.Itoa(cur), metaDir, "kits", k.name), filepath.Join(tree, metaDir, "kits", k.name)); err != nil {
			return 0, err
		}
		for _, e := range k.manifest.Entries {
			if !inTree(e.Path) {
				continue
			}
			// A .build-id file another kit shares is linked once; the
			// debug manifest goes with the kit's metadata (site/debug.go).
			if err := carryEntry(s.path(genDir, strconv.Itoa(cur)), tree, k.name, e); err != nil {
				return 0, err
			}
		}
	}
	kdir := filepath.Join(tree, metaDir, "kits", m.Name)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return 0, err
	}
	if err := placeDebugManifest(tree, kdir, m); err != nil {
		return 0, err
	}
	if err := os.Rename(filepath.Join(stage.dir, stagedManifest), filepath.Join(kdir, "manifest.json")); err != nil {
		return 0, err
	}
	if stage.index != nil {
		if err := os.WriteFile(filepath.Join(kdir, "index.json"), stage.index, 0o444); err != nil {
			return 0, err
		}
	}
	// The generation's feed-mirror exports: exports.json and the latest
	// links.
	dropped, err := s.mirrorExports(tree, cur, active, m, opts.KeepExports)
	if err != nil {
		return 0, err
	}
	// The generation's image index and state.
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
	nst := &State{Generation: next, Previous: cur, HighWater: map[string]string{}}
	for k, v := range st.HighWater {
		nst.HighWater[k] = v
	}
	for _, k := range st.Kits {
		if k.Name != m.Name {
			nst.Kits = append(nst.Kits, k)
		}
	}
	nst.Kits = append(nst.Kits, KitState{
		Name: m.Name, Version: m.Version, ManifestDigest: res.ManifestDigest,
		CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, StalenessWindowHours: m.StalenessWindowHours,
		InstalledAt: now.Truncate(time.Second), Forced: res.Forced, Entries: res.Entries, Bytes: res.Bytes, Images: len(m.Images),
	})
	for k, v := range st.HighWaterDigest {
		setHighWaterDigest(nst, k, v)
	}
	if newer(m.Version, nst.HighWater[m.Name]) {
		nst.HighWater[m.Name] = m.Version
		setHighWaterDigest(nst, m.Name, res.ManifestDigest)
	}
	if err := os.WriteFile(filepath.Join(tree, metaDir, stateFile), encodeState(nst), 0o444); err != nil {
		return 0, err
	}
	if err := s.at("prepared"); err != nil {
		return 0, err
	}

	// 2. Publish: journal, blobs into the shared store, durable, then the
	// generation, then visible. Until the switch, a failure undoes it all.
	j := &journal{Generation: next, Blobs: []string{}}
	for _, h := range stage.images.Blobs() {
		if _, err := os.Stat(filepath.Join(stage.store, h)); errors.Is(err, fs.ErrNotExist) {
			j.Blobs = append(j.Blobs, h)
		}
	}
	jb, _ := json.Marshal(j)
	if err := atomicfile.WriteFile(filepath.Join(stage.dir, journalFile), jb, 0o644); err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed && s.undoPublish(j) != nil {
			stage.keep = true // the next command's recovery finishes the undo
		}
	}()
	for _, h := range j.Blobs {
		if err := s.at("publish"); err != nil {
			return 0, err
		}
		if err := os.Rename(filepath.Join(stage.dir, "blobs", h), filepath.Join(stage.store, h)); err != nil {
			return 0, err
		}
	}
	if err := syncfs(s.root); err != nil {
		return 0, err
	}
	if err := s.at("synced"); err != nil {
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
	if err := s.at("renamed"); err != nil {
		return 0, err
	}
	if err := s.switchTo(next); err != nil {
		return 0, err
	}
	committed = true
	s.at("switched")

	// 3. After the commit point: derived files, then clean-up.
	retired := map[int]time.Time{}
	for g, t := range st.Retired {
		retired[g] = t
	}
	if cur > 0 {
		retired[cur] = now
	}
	delete(retired, next)
	nst.Retired = retired
	if err := s.writeState(nst); err != nil {
		return 0, err
	}
	if err := s.syncStoreIndex(next); err != nil {
		return 0, err
	}
	fields := map[string]any{"kit": m.Name, "version": m.Version, "manifestDigest": res.ManifestDigest, "generation": next}
	if res.Previous != "" {
		fields["previousVersion"] = res.Previous
	}
	event := "install"
	if res.RollForward {
		fields["rollForward"] = true
	}
	if len(dropped) > 0 {
		fields["droppedExports"] = dropped
	}
	if res.Forced {
		event = "forced-activation"
		fields["reason"] = opts.Reason
	}
	if err := s.audit(now, event, fields); err != nil {
		return 0, err
	}
	// Keep the new generation, the one it replaced (for rollback), and
	// those still within their grace period.
	nst.Retired, err = s.pruneGenerations(next, cur, retired, now, grace)
	if werr := s.writeState(nst); werr != nil {
		return 0, werr
	}
	if err != nil {
		return 0, err
	}
	return next, nil
}

// activeKits reads the manifests and image indexes of the kits active in
// generation n.
func (s *Site) activeKits(n int) ([]*activeKit, error) {
	dir := s.path(genDir, strconv.Itoa(n), metaDir, "kits")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", n, err)
	}
	var out []*activeKit
	for _, e := range entries {
		b, err := limit.ReadRegularFile(filepath.Join(dir, e.Name(), "manifest.json"), manifest.MaxManifestSize)
		if err != nil {
			return nil, err
		}
		m, err := manifest.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("generation %d, kit %s: %w", n, e.Name(), err)
		}
		k := &activeKit{name: m.Name, manifest: m, digest: manifest.Digest(b)}
		k.index, err = limit.ReadRegularFile(filepath.Join(dir, e.Name(), "index.json"), verify.MaxImageIndex)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		out = append(out, k)
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
		b, err := limit.ReadRegularFile(filepath.Join(dir, e.Name(), "index.json"), verify.MaxImageIndex)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("kit %s: images/index.json: %w: %w", e.Name(), err, errdef.ErrInvalid)
		}
		for _, d := range idx.Manifests {
			ann := map[string]string{}
			for k, v := range d.Annotations {
				ann[k] = v
			}
			ann[ocilayout.KitAnnotation] = e.Name()
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

// kitIsBad reports whether err says the kit itself is wrong (damaged,
// unsigned or malicious), which quarantines it, rather than that the
// install was cancelled or the site could not be written.
func kitIsBad(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, errdef.ErrDigestMismatch) || errors.Is(err, errdef.ErrSignature) || errors.Is(err, errdef.ErrInvalid)
}

// stager is the verify.Sink of an install: it writes entries into the
// staging folder, confined with os.Root: the images' new blobs through
// ocidir (skipping those the store has), the rest as the tree. The writes
// happen on a goroutine of their own (stageWriter), overlapping the
// verification of the entries that follow.
type stager struct {
	writer *stageWriter
	dir    string
	root   *os.Root
	tree   *atomicfile.Tree // writes inside root
	store  string
	images *ocidir.Writer
	index  []byte
	// keep leaves the staging folder (and its journal) for recovery.
	keep bool
}

func newStager(dir, store string) (*stager, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	images, err := ocidir.New(dir, ocidir.Options{BlobDir: "blobs", BlobsOnly: true, Have: func(hex string) bool {
		_, err := os.Stat(filepath.Join(store, hex))
		return err == nil
	}})
	if err != nil {
		r.Close()
		return nil, err
	}
	st := &stager{dir: dir, root: r, tree: atomicfile.NewTree(r), store: store, images: images}
	st.writer = newStageWriter(st.write)
	return st, nil
}

func (st *stager) close() {
	st.writer.wait()
	st.images.Close()
	st.tree.Close()
	st.root.Close()
}

// Entry implements verify.Sink.
func (st *stager) Entry(ctx context.Context, e manifest.Entry, r io.Reader) error {
	return st.writer.Entry(e, r)
}

// write writes one entry, on the stageWriter's goroutine.
func (st *stager) write(e manifest.Entry, r io.Reader) error {
	if strings.HasPrefix(e.Path, "images/") {
		return st.images.Write(e, r)
	}
	return st.tree.WriteNew(path.Join("tree", e.Path), r)
}
