// Package site installs verified kits into a site root and keeps it
// consistent across crashes.
//
// Layout (docs/site.md):
//
//	ROOT/
//	  .lock               flock held by every command that changes the site
//	  state.json          active kits, generation, high-water versions (and the
//	                      manifest digests that set them: roll-forward)
//	  audit.log           JSON lines: install, rollback, forced activation, quarantine
//	  store/oci/          OCI image layout: every image blob of every kit, shared, 0444;
//	                      its index.json is the current generation's image index
//	  generations/N/      the materialised tree of generation N
//	    .offkit/state.json         the state this generation was made with
//	    .offkit/kits/NAME/manifest.json, index.json   each active kit's manifest and image index
//	    .offkit/images/index.json  the images served in this generation (ref.name annotated)
//	    .offkit/mirror/exports.json  its feed-mirror exports (mirror.SiteExports)
//	    rules/ dashboards/ mirror/ debug/ authority/ files/
//	    mirror/<kind>/latest -> <exportId>  the newest export of each kind
//	  generations/.removing-N-ID  a generation being removed (recovery finishes it)
//	  current -> generations/N
//	  staging/            work in progress, confined with os.Root; TX/journal.json
//	                      lists the blobs an install is publishing
//	  quarantine/         kits that failed verification, with the reason
//
// The commit point of an install or rollback is the rename of the `current`
// symlink. Everything before it is invisible (staging, a new generation
// folder nobody points to); everything after it (state.json,
// store/oci/index.json) is derived from the generation and repaired by the
// next command. A kill at any instant therefore leaves either the old site
// or the new one.
//
// Rules an install enforces, all before anything is written outside staging:
//
//   - Two kits may not interfere. Every entry outside images/ is
//     materialised in the generation tree whatever role the manifest gives
//     it, so every such path of the new kit is compared with every path of
//     every other active kit: the same path, paths equal under Unicode case
//     folding or NFC/NFD normalisation, or a file of one kit that the other
//     uses as a folder (either way) is errdef.ErrInvalid naming both kits and
//     the path. Paths under .offkit/ are the site's and are refused.
//   - A repository:tag is served for one kit only: the references of the
//     new kit's images (manifest images[] and the ref.name annotations of its
//     images/index.json), mapped as `offkit serve` maps them by default
//     (registry host dropped), must not name a tag another active kit
//     serves (errdef.ErrInvalid naming both kits). A cosign signature or
//     attestation tag (sha256-<hex>.sig/.att) carried by both with the same
//     digest is the same signature and is allowed. Re-installing or upgrading
//     a kit of the same name replaces its own claims.
//   - Feed-mirror exports have the layout mirror/<kind>/<exportId>/mirror/…
//     (mirror.SplitSitePath), and no two active kits carry one export
//     (kind and exportId, case-insensitively): ErrInvalid. The new
//     generation records every export of its active kits, and those a
//     kit's new version dropped (retained, hard-linked from the generation
//     before, up to InstallOptions.KeepExports per kind), in
//     .offkit/mirror/exports.json, with a relative link
//     mirror/<kind>/latest to the greatest exportId of each kind (see
//     mirrorExports).
//   - A refused install changes nothing. Verification, the policy checks
//     above and the building of the new generation tree all happen inside
//     staging; only then are the kit's new blobs published to the store,
//     listed first in a journal (staging/TX/journal.json) with the number of
//     the generation being made. If anything fails before `current` points
//     to that generation, the same command removes the generation folder and
//     those blobs, or, if it was killed, the next command's recovery does. An
//     install refused at a root that did not exist removes the root again
//     (quarantine record included: the error says why).
//
// Generations are removed so that a partial one is never taken for a
// complete one: generations/N is renamed to generations/.removing-N-<id>,
// durably, before its files are deleted, and recovery finishes any removal
// cut short. A generation that stopped being current is kept for readers
// still using it (InstallOptions.Grace, DefaultGrace by default) before an
// install removes it; the generation a rollback would switch to (the one the
// current generation replaced) is always kept. A rollback checks that its
// target is complete (see checkGeneration: state, image index, each active
// kit's manifest with the recorded digest, every file with its manifest
// size, every blob in the store with its size) and refuses with
// errdef.ErrDigestMismatch naming the missing or wrong file otherwise.
package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// Paths inside a site root.
const (
	stateFile   = "state.json"
	auditFile   = "audit.log"
	lockFile    = ".lock"
	currentLink = "current"
	genDir      = "generations"
	stagingDir  = "staging"
	quarDir     = "quarantine"
	storeBlobs  = "store/oci/blobs/sha256"
	metaDir     = ".offkit"
)

// State is state.json.
type State struct {
	Generation int        `json:"generation"`
	Kits       []KitState `json:"kits"`
	// HighWater is the highest version of each kit name ever activated
	// without force; versions only move forward.
	HighWater map[string]string `json:"highWater"`
	// HighWaterDigest is the manifest digest of the kit that set each
	// high-water mark: after a rollback, installing that very kit again is
	// a roll-forward, allowed without force. (Absent on sites made before
	// it was recorded: there a roll-forward needs force.)
	HighWaterDigest map[string]string `json:"highWaterDigest,omitempty"`
	// Previous is the generation this one replaced: where a rollback goes.
	Previous int `json:"previous,omitempty"`
	// Retired records when each generation still kept stopped being
	// current (state.json only), for the grace period before removal.
	Retired map[int]time.Time `json:"retired,omitempty"`
}

// KitState is one active kit.
type KitState struct {
	Name                 string     `json:"name"`
	Version              string     `json:"version"`
	ManifestDigest       string     `json:"manifestDigest"`
	CreatedAt            time.Time  `json:"createdAt"`
	ExpiresAt            *time.Time `json:"expiresAt,omitempty"`
	StalenessWindowHours int        `json:"stalenessWindowHours,omitempty"`
	InstalledAt          time.Time  `json:"installedAt"`
	Forced               bool       `json:"forced,omitempty"`
	Entries              int        `json:"entries"`
	Bytes                int64      `json:"bytes"`
	Images               int        `json:"images"`
}

// Site is an opened site root.
type Site struct {
	root string
	lock *os.File
	// readOnly: opened by OpenReadOnly, without the lock; nothing is
	// written.
	readOnly bool
	// created is the topmost folder Open created ("" when root existed):
	// an install refused there removes it again.
	created string
	// hook, set by tests only, is called at each step of a commit and of a
	// removal (see at).
	hook func(point string) error
}

// Open opens (creating if create is set) the site at root and takes its
// lock, then repairs what a crash may have left: the staging area is
// discarded and state.json is brought in line with `current`.
func Open(root string, create bool) (*Site, error) {
	var created string
	if st, err := os.Stat(root); err != nil {
		if !errors.Is(err, os.ErrNotExist) || !create {
			return nil, fmt.Errorf("site root %s: %w", root, errdef.ErrNotFound)
		}
		created = filepath.Clean(root)
		for {
			parent := filepath.Dir(created)
			if _, err := os.Stat(parent); err == nil || parent == created {
				break
			}
			created = parent
		}
	} else if !st.IsDir() {
		return nil, fmt.Errorf("site root %s: not a folder: %w", root, errdef.ErrInvalid)
	}
	if create {
		for _, d := range []string{genDir, stagingDir, quarDir, storeBlobs, "authority"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				return nil, err
			}
		}
		if err := ensureLayout(root); err != nil {
			return nil, err
		}
	}
	lf, err := os.OpenFile(filepath.Join(root, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("site root %s: %w", root, err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		lf.Close()
		return nil, fmt.Errorf("locking %s: %w", root, err)
	}
	s := &Site{root: root, lock: lf, created: created}
	if err := s.recover(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the lock.
func (s *Site) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Root returns the site root.
func (s *Site) Root() string { return s.root }

func (s *Site) path(p ...string) string {
	return filepath.Join(append([]string{s.root}, p...)...)
}

func ensureLayout(root string) error {
	p := filepath.Join(root, "store/oci/oci-layout")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return atomicfile.WriteFile(p, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// recover repairs what a crash may have left: an install's staging folder
// (undoing what it published if it did not commit), generation removals cut
// short, state.json and store/oci/index.json out of line with `current`.
func (s *Site) recover() error {
	os.Remove(s.path(currentLink + ".tmp"))
	gen, err := s.currentGeneration()
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir(s.path(stagingDir))
	for _, e := range entries {
		if err := s.undoStaging(s.path(stagingDir, e.Name()), gen); err != nil {
			return fmt.Errorf("cleaning staging: %w", err)
		}
	}
	if err := s.finishRemovals(); err != nil {
		return err
	}
	st, err := s.readState()
	if err != nil {
		return err
	}
	if st.Generation != gen {
		// The switch happened but state.json was not written (or a rollback
		// was cut short): the generation's own state is the truth, and the
		// high-water marks only ever grow.
		gst := &State{Generation: 0, HighWater: map[string]string{}}
		if gen > 0 {
			if gst, err = s.generationState(gen); err != nil {
				return err
			}
		}
		mergeHighWater(gst, st)
		gst.Generation = gen
		gst.Retired = st.Retired
		delete(gst.Retired, gen)
		if err := s.writeState(gst); err != nil {
			return err
		}
	}
	return s.syncStoreIndex(gen)
}

// currentGeneration returns N of current -> generations/N, 0 if none.
func (s *Site) currentGeneration() (int, error) {
	target, err := os.Readlink(s.path(currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", s.path(currentLink), err)
	}
	n, err := strconv.Atoi(filepath.Base(target))
	if err != nil || filepath.Dir(target) != genDir {
		return 0, fmt.Errorf("%s points to %q, not %s/N: %w", s.path(currentLink), target, genDir, errdef.ErrInvalid)
	}
	return n, nil
}

// generations lists the generation numbers present, ascending.
func (s *Site) generations() ([]int, error) {
	entries, err := os.ReadDir(s.path(genDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func (s *Site) readState() (*State, error) {
	b, err := limit.ReadRegularFile(s.path(stateFile), MaxStateSize)
	if errors.Is(err, os.ErrNotExist) {
		return &State{HighWater: map[string]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeState(s.path(stateFile), b)
}

func (s *Site) generationState(n int) (*State, error) {
	p := s.path(genDir, strconv.Itoa(n), metaDir, stateFile)
	b, err := limit.ReadRegularFile(p, MaxStateSize)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", n, err)
	}
	return decodeState(p, b)
}

func decodeState(p string, b []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", p, err, errdef.ErrInvalid)
	}
	if st.HighWater == nil {
		st.HighWater = map[string]string{}
	}
	return &st, nil
}

func encodeState(st *State) []byte {
	sort.Slice(st.Kits, func(i, j int) bool { return st.Kits[i].Name < st.Kits[j].Name })
	b, _ := json.MarshalIndent(st, "", "  ")
	return append(b, '\n')
}

func (s *Site) writeState(st *State) error {
	return atomicfile.WriteFile(s.path(stateFile), encodeState(st), 0o644)
}

// State returns the site's state.
func (s *Site) State() (*State, error) { return s.readState() }

// audit appends one JSON line to audit.log.
func (s *Site) audit(now time.Time, event string, fields map[string]any) error {
	rec := map[string]any{"time": now.UTC().Format(time.RFC3339), "event": event}
	for k, v := range fields {
		rec[k] = v
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path(auditFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// switchTo points current at generation n, atomically.
func (s *Site) switchTo(n int) error {
	tmp := s.path(currentLink + ".tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(genDir, strconv.Itoa(n)), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path(currentLink)); err != nil {
		return err
	}
	return atomicfile.SyncDir(s.root)
}

// RollbackOptions configure Rollback.
type RollbackOptions struct {
	// Now is when the generation rolled back from stops being current (its
	// grace period starts); zero means time.Now().
	Now time.Time
}

// Rollback switches current back to the generation it replaced, after
// checking that generation is complete (checkGeneration); an incomplete
// one is errdef.ErrDigestMismatch naming what it lacks, and nothing changes.
func (s *Site) Rollback(opts RollbackOptions) (*State, error) {
	if s.readOnly {
		return nil, errReadOnly
	}
	cur, err := s.currentGeneration()
	if err != nil {
		return nil, err
	}
	prev := s.rollbackTarget(cur)
	if prev == 0 {
		return nil, fmt.Errorf("no generation before %d to roll back to: %w", cur, errdef.ErrNotFound)
	}
	if err := s.checkGeneration(prev, ""); err != nil {
		return nil, fmt.Errorf("rollback to generation %d refused: %w", prev, err)
	}
	st, err := s.readState()
	if err != nil {
		return nil, err
	}
	pst, err := s.generationState(prev)
	if err != nil {
		return nil, err
	}
	mergeHighWater(pst, st)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pst.Generation = prev
	pst.Retired = map[int]time.Time{}
	for g, t := range st.Retired {
		pst.Retired[g] = t
	}
	pst.Retired[cur] = now.UTC()
	delete(pst.Retired, prev)
	if err := s.switchTo(prev); err != nil {
		return nil, err
	}
	if err := s.writeState(pst); err != nil {
		return nil, err
	}
	if err := s.syncStoreIndex(prev); err != nil {
		return nil, err
	}
	if err := s.audit(now, "rollback", map[string]any{"from": cur, "to": prev}); err != nil {
		return nil, err
	}
	return pst, nil
}

// QuarantineCount returns how many kits are in quarantine.
func (s *Site) QuarantineCount() int {
	entries, _ := os.ReadDir(s.path(quarDir))
	n := 0
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// PreviousGeneration returns the generation rollback would switch to, 0 if
// there is none or it is not complete.
func (s *Site) PreviousGeneration() int {
	cur, _ := s.currentGeneration()
	prev := s.rollbackTarget(cur)
	if prev == 0 || s.checkGeneration(prev, "") != nil {
		return 0
	}
	return prev
}
