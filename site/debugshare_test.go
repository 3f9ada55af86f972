package site_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// Build ids of the debug share tests: one both kits carry, one each.
const (
	sharedID = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
	ownA     = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	ownB     = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
)

// storeFile is the bytes of the .debug file of id in the current
// generation, read as offkit debug find and serve read it; nil when it is
// not installed.
func storeFile(t *testing.T, root, id string) []byte {
	t.Helper()
	gen, _, err := site.NewView(root).OpenGeneration()
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	f, _, _, err := debugstore.Open(gen, id, debugstore.KindDebuginfo)
	if errdef.ExitCode(err) == errdef.ExitNotFound {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDebugStoresOfTwoKits: two kits that each carry a debug store (and so
// each a debug/debug-manifest.json) are both active; a .build-id file both
// carry with the same bytes is one file of the generation, and stays when
// one kit's new version drops it; a third kit with other bytes under that
// build id is refused (exit 11) naming both kits; the generations pass the
// rollback check and a rollback restores the shared file.
func TestDebugStoresOfTwoKits(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	shared, a, b := kittest.DebugELF(t, sharedID, 3000), kittest.DebugELF(t, ownA, 1000), kittest.DebugELF(t, ownB, 2000)
	kA := kittest.DebugFilesKit(t, key, "alpha", "1.0.0", map[string][]byte{sharedID: shared, ownA: a})
	kB := kittest.DebugFilesKit(t, key, "beta", "1.0.0", map[string][]byte{sharedID: shared, ownB: b})
	now := kittest.Created.Add(time.Hour)
	installAt(t, root, kA.Path, key, now, time.Hour)
	installAt(t, root, kB.Path, key, now.Add(time.Minute), time.Hour)
	checkConsistent(t, root)
	if st := state(t, root); len(st.Kits) != 2 {
		t.Fatalf("active kits %+v, want alpha and beta", st.Kits)
	}
	for id, want := range map[string][]byte{sharedID: shared, ownA: a, ownB: b} {
		if got := storeFile(t, root, id); !bytes.Equal(got, want) {
			t.Errorf("build id %s: %d bytes installed, want %d", id, len(got), len(want))
		}
	}
	// Each kit's debug manifest is kept with its metadata; none at the kit
	// path, where the two would collide.
	cur := filepath.Join(root, "current")
	for _, k := range []string{"alpha", "beta"} {
		dm, err := os.ReadFile(filepath.Join(cur, filepath.FromSlash(site.DebugManifestPath(k))))
		if err != nil || bytes.Contains(dm, []byte(ownA)) != (k == "alpha") || bytes.Contains(dm, []byte(ownB)) != (k == "beta") {
			t.Errorf("kit %s: debug manifest %s: %v\n%s", k, site.DebugManifestPath(k), err, dm)
		}
	}
	if _, err := os.Lstat(filepath.Join(cur, "debug", "debug-manifest.json")); err == nil {
		t.Error("debug/debug-manifest.json is in the generation tree")
	}
	// The active kit again is already active: its files, debug manifest
	// included, are all where the check looks.
	if res, err := install(t, root, kB.Path, key, nil); err != nil || !res.AlreadyActive {
		t.Fatalf("re-install of beta: %+v %v", res, err)
	}

	// alpha 2.0.0 drops the shared id: beta still has it.
	kA2 := kittest.DebugFilesKit(t, key, "alpha", "2.0.0", map[string][]byte{ownA: a})
	installAt(t, root, kA2.Path, key, now.Add(2*time.Minute), time.Hour)
	checkConsistent(t, root)
	if got := storeFile(t, root, sharedID); !bytes.Equal(got, shared) {
		t.Fatalf("shared build id after alpha dropped it: %d bytes, want beta's %d", len(got), len(shared))
	}

	// gamma: other bytes under beta's build id.
	other := kittest.DebugELF(t, sharedID, 4000)
	kC := kittest.DebugFilesKit(t, key, "gamma", "1.0.0", map[string][]byte{sharedID: other})
	before := snapshot(t, root)
	_, err := install(t, root, kC.Path, key, func(o *site.InstallOptions) { o.Now = now.Add(3 * time.Minute) })
	if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "kit gamma") || !strings.Contains(err.Error(), "kit beta") || !strings.Contains(err.Error(), sharedID) {
		t.Fatalf("gamma with other bytes under beta's build id: %v, want exit 11 naming both kits and the id", err)
	}
	if snapshot(t, root) != before {
		t.Fatal("the refused install changed the site")
	}

	// Rollback to alpha 1.0.0 + beta: the generation passes the check,
	// and every file is there.
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	prev := s.PreviousGeneration()
	s.Close()
	if prev == 0 {
		t.Fatal("status offers no rollback to the generation of alpha 1.0.0 and beta")
	}
	if _, err := rollback(t, root); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, root)
	for id, want := range map[string][]byte{sharedID: shared, ownA: a, ownB: b} {
		if got := storeFile(t, root, id); !bytes.Equal(got, want) {
			t.Errorf("after rollback, build id %s: %d bytes, want %d", id, len(got), len(want))
		}
	}
}

// TestDebugManifestAtKitPathCarried: a generation made before debug
// manifests were kept with the kit's metadata has it at
// debug/debug-manifest.json; the next install carries it into the
// metadata, and both generations pass the check.
func TestDebugManifestAtKitPathCarried(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	kA := kittest.DebugFilesKit(t, key, "alpha", "1.0.0", map[string][]byte{ownA: kittest.DebugELF(t, ownA, 100)})
	now := kittest.Created.Add(time.Hour)
	installAt(t, root, kA.Path, key, now, time.Hour)
	gen := filepath.Join(root, "generations", "1")
	if err := os.MkdirAll(filepath.Join(gen, "debug"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(gen, filepath.FromSlash(site.DebugManifestPath("alpha"))), filepath.Join(gen, "debug", "debug-manifest.json")); err != nil {
		t.Fatal(err)
	}
	if res, err := install(t, root, kA.Path, key, nil); err != nil || !res.AlreadyActive {
		t.Fatalf("the old layout is not complete: %+v %v", res, err)
	}
	kB := kittest.DebugFilesKit(t, key, "beta", "1.0.0", map[string][]byte{ownB: kittest.DebugELF(t, ownB, 100)})
	installAt(t, root, kB.Path, key, now.Add(time.Minute), time.Hour)
	checkConsistent(t, root)
	cur := filepath.Join(root, "current")
	for _, k := range []string{"alpha", "beta"} {
		if _, err := os.Stat(filepath.Join(cur, filepath.FromSlash(site.DebugManifestPath(k)))); err != nil {
			t.Errorf("kit %s: %v", k, err)
		}
	}
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PreviousGeneration() != 1 {
		t.Fatal("the old-layout generation does not pass the rollback check")
	}
}
