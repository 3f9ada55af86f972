package site

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/mirror"
)

// OpenReadOnly opens the site at root for reading only: it takes no lock,
// runs no recovery and writes nothing, so it works without write access and
// never waits for a command that changes the site. What it reads is a
// Snapshot. With absentOK, a root that does not exist is an empty site
// (what a dry-run first install checks against); otherwise it is
// errdef.ErrNotFound. Install on such a Site accepts only DryRun.
func OpenReadOnly(root string, absentOK bool) (*Site, error) {
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) && absentOK:
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("site root %s: %w", root, errdef.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("site root %s: %w", root, err)
	case !st.IsDir():
		return nil, fmt.Errorf("site root %s: not a folder: %w", root, errdef.ErrInvalid)
	}
	return &Site{root: root, readOnly: true}, nil
}

// Snapshot is a site as it is at one instant, read without the lock.
type Snapshot struct {
	// Generation is the generation `current` points to (0: nothing installed).
	Generation int
	// State is that generation's own state (the one it was made with, so
	// it never disagrees with what is served), with Generation set and the
	// high-water marks of state.json merged in (a rollback keeps them).
	State *State
	// PreviousGeneration is the generation a rollback would switch to, 0
	// if there is none or it is not complete.
	PreviousGeneration int
	// Exports are the feed-mirror exports of that generation (empty when
	// it records none).
	Exports *mirror.SiteExports
	// Quarantined counts the quarantine records.
	Quarantined int
	// Busy: another command (install or rollback) holds the site lock: it
	// is changing the site, and until it switches `current` this snapshot
	// is what readers see.
	Busy bool
	// Interrupted: no command is running but staging/ holds the work of
	// one that was cut short; the next install or rollback discards (or
	// undoes) it.
	Interrupted bool
}

// Snapshot reads the site without locking it or writing anything: it
// resolves `current` once and reads that generation, which never changes
// (a generation removed meanwhile is retried once). It is what `offkit
// status` reports and what a dry-run install checks against.
func (s *Site) Snapshot() (*Snapshot, error) {
	snap := &Snapshot{Busy: s.lockHeld()}
	for try := 0; ; try++ {
		gen, err := s.currentGeneration()
		if err != nil {
			return nil, err
		}
		st := &State{HighWater: map[string]string{}}
		if gen > 0 {
			st, err = s.generationState(gen)
			if errors.Is(err, fs.ErrNotExist) && try == 0 {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		st.Generation, st.Retired = gen, nil
		top, err := s.readState()
		if err != nil {
			return nil, err
		}
		mergeHighWater(st, top)
		snap.Exports = &mirror.SiteExports{Exports: []mirror.SiteExport{}, Latest: map[string]string{}}
		if gen > 0 {
			x, err := readExports(s.path(genDir, strconv.Itoa(gen)))
			if err != nil {
				return nil, err
			}
			if x != nil {
				snap.Exports = x
			}
		}
		snap.Generation, snap.State = gen, st
		break
	}
	if prev := s.rollbackTarget(snap.Generation); prev > 0 && s.checkGeneration(prev, "") == nil {
		snap.PreviousGeneration = prev
	}
	snap.Quarantined = s.QuarantineCount()
	if !snap.Busy {
		if entries, _ := os.ReadDir(s.path(stagingDir)); len(entries) > 0 {
			// A command may have started since the first look.
			snap.Busy = s.lockHeld()
			snap.Interrupted = !snap.Busy
		}
	}
	return snap, nil
}

// lockHeld reports whether a command holds the site lock, by a
// non-blocking probe on .lock opened read-only: it never waits, and
// creates nothing (no .lock: no command ever changed this site). A lock
// that cannot be probed counts as not held.
func (s *Site) lockHeld() bool {
	if s.lock != nil {
		return false // this Site holds it
	}
	f, _, err := plainfile.OpenRegular(s.path(lockFile)) // a named pipe does not hold it
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true
	}
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return false
}

// mergeHighWater raises dst's high-water marks to src's where src's are
// higher, with the manifest digest of the kit that set each.
func mergeHighWater(dst, src *State) {
	if dst.HighWater == nil {
		dst.HighWater = map[string]string{}
	}
	for name, v := range src.HighWater {
		switch {
		case newer(v, dst.HighWater[name]):
			dst.HighWater[name] = v
			setHighWaterDigest(dst, name, src.HighWaterDigest[name])
		case v == dst.HighWater[name] && dst.HighWaterDigest[name] == "":
			setHighWaterDigest(dst, name, src.HighWaterDigest[name])
		}
	}
}

func setHighWaterDigest(st *State, name, digest string) {
	if digest == "" {
		delete(st.HighWaterDigest, name)
		return
	}
	if st.HighWaterDigest == nil {
		st.HighWaterDigest = map[string]string{}
	}
	st.HighWaterDigest[name] = digest
}
