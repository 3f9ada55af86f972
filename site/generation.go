package site

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/manifest"
)

// DefaultGrace is how long a generation that stopped being current is kept
// for the readers that may still use it (`offkit serve` resolves `current`
// once per request) before an install removes it.
const DefaultGrace = 10 * time.Minute

// trashPrefix names a generation being removed: generations/N is first
// renamed to generations/.removing-N-<random>, so that a removal cut short
// never leaves a partial generations/N; recovery finishes it.
const trashPrefix = ".removing-"

// journalFile, in an install's staging folder, lists the blobs the install
// publishes into the store and the generation it creates, written before
// the first of them is published. Until the generation is current, the
// install undoes them on failure, and recovery does if it was killed.
const journalFile = "journal.json"

type journal struct {
	Generation int      `json:"generation"`
	Blobs      []string `json:"blobs"`
}

// at is a test hook: it is called at each step of a commit and of a
// generation removal, and a non-nil error fails the step.
func (s *Site) at(point string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(point)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeGeneration removes generations/n so that it can never be taken for
// a complete generation: rename out of the numbered names first (durably),
// then delete.
func (s *Site) removeGeneration(n int) error {
	trash := s.path(genDir, trashPrefix+strconv.Itoa(n)+"-"+randHex(4))
	if err := os.Rename(s.path(genDir, strconv.Itoa(n)), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing generation %d: %w", n, err)
	}
	if err := atomicfile.SyncDir(s.path(genDir)); err != nil {
		return err
	}
	return s.removeAll(trash)
}

// removeAll is os.RemoveAll, file by file under the test hook, the site's
// metadata (.offkit/, first in lexical order) last: the order in which a
// removal cut short leaves the most plausible-looking remains.
func (s *Site) removeAll(dir string) error {
	if s.hook == nil {
		return os.RemoveAll(dir)
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if err := s.at("remove"); err != nil {
			return err
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// finishRemovals deletes what interrupted generation removals left.
func (s *Site) finishRemovals() error {
	entries, err := os.ReadDir(s.path(genDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), trashPrefix) {
			if err := os.RemoveAll(s.path(genDir, e.Name())); err != nil {
				return fmt.Errorf("finishing the removal of %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// maxJournal bounds an install's journal: the blobs of a kit of
// manifest.MaxEntries entries, each a quoted 64-digit name.
const maxJournal = 128 << 20

// undoStaging discards an install's staging folder. When its journal names a
// generation that is not current, the install did not commit: the
// generation (if it was created) and the blobs it published are removed
// first.
func (s *Site) undoStaging(dir string, current int) error {
	b, err := limit.ReadRegularFile(filepath.Join(dir, journalFile), maxJournal)
	if err == nil {
		var j journal
		if err := json.Unmarshal(b, &j); err != nil {
			return fmt.Errorf("%s: %w: %w", filepath.Join(dir, journalFile), err, errdef.ErrInvalid)
		}
		if j.Generation != current {
			if err := s.undoPublish(&j); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dir)
}

// undoPublish removes the generation and blobs an uncommitted install added.
func (s *Site) undoPublish(j *journal) error {
	if j.Generation > 0 {
		if err := s.removeGeneration(j.Generation); err != nil {
			return err
		}
	}
	for _, h := range j.Blobs {
		if !reponame.ValidDigest("sha256:" + h) {
			continue // not a name install writes: never a path outside the store
		}
		if err := os.Remove(s.path(storeBlobs, h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return atomicfile.SyncDir(s.path(storeBlobs))
}

// incomplete is the error of a generation that lacks something.
func incomplete(n int, what string, err error) error {
	return fmt.Errorf("generation %d is incomplete: %s: %w: %w", n, what, err, errdef.ErrDigestMismatch)
}

// checkGeneration reports the first thing generation n lacks, nil when it
// is complete. Only the kit named only is checked when only is not "".
// What is checked, without reading file contents:
//   - .offkit/state.json parses, and .offkit/images/index.json is present;
//   - for every kit that state lists: .offkit/kits/NAME/manifest.json is
//     present and has the manifest digest the state records;
//     .offkit/kits/NAME/index.json is present when the kit ships
//     images/index.json;
//   - every entry of that manifest outside images/ is a regular file of the
//     generation with the manifest's size;
//   - every images/blobs/sha256/<hex> entry is a file of the store with the
//     manifest's size;
//   - when the generation has .offkit/mirror/exports.json: it parses, every
//     file it lists (retained exports' too) is a regular file of its size,
//     and each kind's mirror/<kind>/latest links to the exportId it names.
//
// A lack is errdef.ErrDigestMismatch naming the file.
func (s *Site) checkGeneration(n int, only string) error {
	gdir := s.path(genDir, strconv.Itoa(n))
	st, err := s.generationState(n)
	if err != nil {
		return incomplete(n, filepath.Join(gdir, metaDir, stateFile), err)
	}
	if only == "" {
		p := filepath.Join(gdir, metaDir, "images", "index.json")
		if _, err := os.Stat(p); err != nil {
			return incomplete(n, p, err)
		}
	}
	for _, k := range st.Kits {
		if only != "" && k.Name != only {
			continue
		}
		mp := filepath.Join(gdir, metaDir, "kits", k.Name, "manifest.json")
		b, err := limit.ReadRegularFile(mp, manifest.MaxManifestSize)
		if err != nil {
			return incomplete(n, mp, err)
		}
		if d := manifest.Digest(b); d != k.ManifestDigest {
			return incomplete(n, mp, fmt.Errorf("digest %s, state says %s", d, k.ManifestDigest))
		}
		m, err := manifest.Parse(b)
		if err != nil {
			return incomplete(n, mp, err)
		}
		for _, e := range m.Entries {
			var p string
			switch hexd, blob := strings.CutPrefix(e.Path, manifest.ImageBlobDir); {
			case inTree(e.Path):
				p = entryFile(gdir, k.Name, e.Path)
			case blob:
				p = s.path(storeBlobs, hexd)
			case e.Path == manifest.ImageIndexPath:
				p = filepath.Join(gdir, metaDir, "kits", k.Name, "index.json")
				if _, err := os.Stat(p); err != nil {
					return incomplete(n, p, err)
				}
				continue
			default:
				continue
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return incomplete(n, p, err)
			}
			if !fi.Mode().IsRegular() || fi.Size() != e.Size {
				return incomplete(n, p, fmt.Errorf("%d bytes (%s), manifest says %d", fi.Size(), fi.Mode().Type(), e.Size))
			}
		}
	}
	if p, err := checkMirrorGeneration(gdir); err != nil {
		return incomplete(n, p, err)
	}
	return nil
}

// rollbackTarget returns the generation a rollback from cur switches to: the
// one cur replaced (its state's previous), or for generations made before
// that was recorded, the highest number below cur. 0 when there is none.
func (s *Site) rollbackTarget(cur int) int {
	if cur == 0 {
		return 0
	}
	if st, err := s.generationState(cur); err == nil && st.Previous > 0 {
		if fi, err := os.Stat(s.path(genDir, strconv.Itoa(st.Previous))); err == nil && fi.IsDir() {
			return st.Previous
		}
		return 0
	}
	gens, _ := s.generations()
	prev := 0
	for _, g := range gens {
		if g < cur {
			prev = g
		}
	}
	return prev
}

// pruneGenerations removes the generations that are neither current nor
// the rollback target and stopped being current at least grace before now
// (all of them when grace is negative).
// retired records when each generation stopped being current; a generation
// it does not know starts its grace now. It returns the updated record.
func (s *Site) pruneGenerations(current, keep int, retired map[int]time.Time, now time.Time, grace time.Duration) (map[int]time.Time, error) {
	gens, err := s.generations()
	if err != nil {
		return retired, err
	}
	out := map[int]time.Time{}
	var errs []error
	sort.Ints(gens)
	for _, g := range gens {
		if g == current {
			continue
		}
		t, ok := retired[g]
		if !ok {
			t = now
		}
		if g == keep || (grace >= 0 && now.Sub(t) < grace) {
			out[g] = t
			continue
		}
		if err := s.removeGeneration(g); err != nil {
			out[g] = t
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// syncStoreIndex makes store/oci/index.json (the store's OCI layout index,
// for tools that read store/oci as a layout) the image index of generation
// n (nothing is done when nothing is installed).
func (s *Site) syncStoreIndex(n int) error {
	if n == 0 {
		return nil
	}
	want, err := limit.ReadRegularFile(s.path(genDir, strconv.Itoa(n), metaDir, "images", "index.json"), MaxGenerationIndex)
	if err != nil {
		return fmt.Errorf("generation %d: %w", n, err)
	}
	p := s.path("store", "oci", "index.json")
	if have, err := limit.ReadRegularFile(p, MaxGenerationIndex); err == nil && string(have) == string(want) {
		return nil
	}
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		return nil
	}
	return atomicfile.WriteFile(p, want, 0o644)
}
