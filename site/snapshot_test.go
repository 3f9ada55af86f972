package site_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// After a rollback, the very kit that set the high-water mark (same
// manifest digest) installs again without force: a roll-forward. Any other
// kit not newer than the mark, even of the same version, is still exit 8.
func TestRollForward(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	v142 := kittest.Build(t, key, "zastava-runtime", "1.4.2", 100<<10, t.TempDir())
	v143 := kittest.Build(t, key, "zastava-runtime", "1.4.3", 200<<10, t.TempDir())
	other143 := kittest.Build(t, key, "zastava-runtime", "1.4.3", 300<<10, t.TempDir())
	rebuilt142 := kittest.Build(t, key, "zastava-runtime", "1.4.2", 150<<10, t.TempDir())
	if other143.ManifestDigest == v143.ManifestDigest || rebuilt142.ManifestDigest == v142.ManifestDigest {
		t.Fatal("the rebuilt kits have the digests of the originals")
	}
	for _, k := range []string{v142.Path, v143.Path} {
		if _, err := install(t, root, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st := state(t, root); st.HighWater["zastava-runtime"] != "1.4.3" || st.HighWaterDigest["zastava-runtime"] != v143.ManifestDigest {
		t.Fatalf("high-water %v, digests %v; want 1.4.3 set by %s", st.HighWater, st.HighWaterDigest, v143.ManifestDigest)
	}
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Rollback(site.RollbackOptions{})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The rollback keeps the mark and who set it.
	if st := state(t, root); st.Kits[0].Version != "1.4.2" || st.HighWater["zastava-runtime"] != "1.4.3" || st.HighWaterDigest["zastava-runtime"] != v143.ManifestDigest {
		t.Fatalf("after rollback: %+v", st)
	}

	before := snapshot(t, root)
	for _, k := range []string{other143.Path, rebuilt142.Path} {
		_, err := install(t, root, k, key, nil)
		if errdef.ExitCode(err) != errdef.ExitNotNewer || !strings.Contains(err.Error(), v143.ManifestDigest) {
			t.Fatalf("install %s after rollback: %v, want exit 8 naming the mark's manifest", filepath.Base(k), err)
		}
	}
	if snapshot(t, root) != before {
		t.Fatal("refused installs changed the site")
	}

	// A dry run says so too, and writes nothing.
	res, err := install(t, root, v143.Path, key, func(o *site.InstallOptions) { o.DryRun = true })
	if err != nil || !res.RollForward {
		t.Fatalf("dry-run roll-forward: %+v %v", res, err)
	}
	res, err = install(t, root, v143.Path, key, nil)
	if err != nil || !res.RollForward || res.Forced || res.Version != "1.4.3" || res.Generation != 3 {
		t.Fatalf("roll-forward: %+v %v", res, err)
	}
	checkConsistent(t, root)
	st := state(t, root)
	if st.Kits[0].Version != "1.4.3" || st.Kits[0].Forced || st.HighWaterDigest["zastava-runtime"] != v143.ManifestDigest {
		t.Fatalf("after roll-forward: %+v", st)
	}
	audit, _ := os.ReadFile(filepath.Join(root, "audit.log"))
	if !strings.Contains(string(audit), `"rollForward":true`) || strings.Contains(string(audit), "forced-activation") {
		t.Fatalf("audit.log: %s", audit)
	}
	// And once more: it is active, nothing to do.
	if res, err = install(t, root, v143.Path, key, nil); err != nil || !res.AlreadyActive {
		t.Fatalf("reinstall: %+v %v", res, err)
	}
}

// tree lists every name under root with its type, mode, size, modification
// time and link target: any write shows.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		l, _ := os.Readlink(p)
		lines = append(lines, strings.Join([]string{rel, fi.Mode().String(), itoa(int(fi.Size())), fi.ModTime().String(), l}, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A snapshot reads a site without the lock and writes nothing: on a copy
// that has no .lock and no state.json, and whose staging holds an
// interrupted install, nothing changes and nothing is created; while a
// command holds the lock, it returns at once and says so.
func TestSnapshotNoLockNoWrites(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	a := kittest.Build(t, key, "app", "1.0.0", 1000, t.TempDir())
	b := kittest.Build(t, key, "app", "1.1.0", 2000, t.TempDir())
	for _, k := range []string{a.Path, b.Path} {
		if _, err := install(t, root, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}

	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", root, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	for _, p := range []string{".lock", "state.json"} {
		if err := os.Remove(filepath.Join(cp, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(cp, "staging", "0123abcd", "tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := tree(t, cp)
	s, err := site.OpenReadOnly(cp, false)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if after := tree(t, cp); after != before {
		t.Fatalf("a snapshot changed the site:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if snap.Generation != 2 || snap.PreviousGeneration != 1 || len(snap.State.Kits) != 1 || snap.State.Kits[0].Version != "1.1.0" || snap.Busy || !snap.Interrupted {
		t.Fatalf("snapshot: %+v, state %+v", snap, snap.State)
	}
	// A dry run through it writes nothing either; a real install is refused.
	c := kittest.Build(t, key, "app", "1.2.0", 3000, t.TempDir())
	opts := site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour), DryRun: true}
	if res, err := s.Install(context.Background(), c.Path, opts); err != nil || !res.DryRun || res.Generation != 2 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	opts.DryRun = false
	if _, err := s.Install(context.Background(), c.Path, opts); errdef.ExitCode(err) != errdef.ExitInvalid {
		t.Fatalf("install through a read-only site: %v", err)
	}
	if after := tree(t, cp); after != before {
		t.Fatalf("a dry run changed the site:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Another command holds the lock: the snapshot does not wait.
	locked, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	done := make(chan *site.Snapshot, 1)
	go func() {
		var snap *site.Snapshot
		s, err := site.OpenReadOnly(root, false)
		if err == nil {
			snap, err = s.Snapshot()
		}
		if err != nil {
			t.Error(err)
		}
		done <- snap
	}()
	select {
	case snap := <-done:
		if snap == nil || !snap.Busy || snap.Generation != 2 {
			t.Fatalf("snapshot while locked: %+v", snap)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a snapshot waited for the site lock")
	}
	locked.Close()
	s, _ = site.OpenReadOnly(root, false)
	if snap, err := s.Snapshot(); err != nil || snap.Busy || snap.Interrupted {
		t.Fatalf("snapshot after the lock is released: %+v %v", snap, err)
	}
}
