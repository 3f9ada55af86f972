package site_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// installAt installs kitPath with the clock at now and the given grace.
func installAt(t *testing.T, root, kitPath string, key *kittest.Key, now time.Time, grace time.Duration) *site.InstallResult {
	t.Helper()
	res, err := install(t, root, kitPath, key, func(o *site.InstallOptions) { o.Now, o.Grace = now, grace })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func generations(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "generations"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func rollback(t *testing.T, root string) (*site.State, error) {
	t.Helper()
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Rollback(site.RollbackOptions{Now: kittest.Created.Add(48 * time.Hour)})
}

// TestRollbackRefusesIncompleteGeneration damages the generation a second
// rollback would switch to the way a removal cut short used to leave it
// (part of its files deleted): status no longer offers it, and rollback
// refuses with exit 2 naming a missing file, leaving the site as it was.
func TestRollbackRefusesIncompleteGeneration(t *testing.T) {
	key := kittest.NewKey(t)
	out := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	now := kittest.Created.Add(time.Hour)
	for i, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		k := kittest.Build(t, key, "a", v, 1000, out)
		installAt(t, root, k.Path, key, now.Add(time.Duration(i)*time.Minute), time.Hour)
	}
	if g := generations(t, root); strings.Join(g, ",") != "1,2,3" {
		t.Fatalf("generations %v", g)
	}
	// Half of generation 1 is gone.
	if err := os.Remove(filepath.Join(root, "generations/1/files/a/big.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "generations/1/rules/a.rules.yaml")); err != nil {
		t.Fatal(err)
	}
	if st, err := rollback(t, root); err != nil || st.Generation != 2 {
		t.Fatalf("first rollback: %+v %v", st, err)
	}
	checkConsistent(t, root)
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	prev := s.PreviousGeneration()
	s.Close()
	if prev != 0 {
		t.Fatalf("status offers rollback to the incomplete generation %d", prev)
	}
	before := snapshot(t, root)
	_, err = rollback(t, root)
	if errdef.ExitCode(err) != errdef.ExitMismatch || !strings.Contains(err.Error(), "generations/1/") {
		t.Fatalf("rollback onto an incomplete generation: %v", err)
	}
	if snapshot(t, root) != before {
		t.Fatal("the refused rollback changed the site")
	}
	checkConsistent(t, root)
}

// TestReinstallRepairsIncompleteKit: when the active kit's files are not all
// in the current generation, installing that very kit again is not "already
// active": it makes a new, complete generation.
func TestReinstallRepairsIncompleteKit(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	k := kittest.Build(t, key, "a", "1.0.0", 1000, t.TempDir())
	installAt(t, root, k.Path, key, kittest.Created.Add(time.Hour), 0)
	if err := os.Remove(filepath.Join(root, "generations/1/files/a/values.yaml")); err != nil {
		t.Fatal(err)
	}
	res := installAt(t, root, k.Path, key, kittest.Created.Add(2*time.Hour), 0)
	if res.AlreadyActive || res.Generation != 2 {
		t.Fatalf("re-install of an incomplete kit: %+v", res)
	}
	checkConsistent(t, root)
	// Now complete: the same kit again is a no-op.
	if res := installAt(t, root, k.Path, key, kittest.Created.Add(3*time.Hour), 0); !res.AlreadyActive {
		t.Fatalf("%+v", res)
	}
}

// TestStoreIndexFollowsGeneration: store/oci/index.json is the image index
// of the current generation after an install, after a rollback, and after
// recovery repairs it.
func TestStoreIndexFollowsGeneration(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	v1 := kittest.SiteKit(t, key, "a", "1.0.0", nil, "stellaops/a:1")
	v2 := kittest.SiteKit(t, key, "a", "1.0.1", nil, "stellaops/a:1")
	installAt(t, root, v1.Path, key, kittest.Created.Add(time.Hour), 0)
	installAt(t, root, v2.Path, key, kittest.Created.Add(2*time.Hour), 0)
	storeIndex := filepath.Join(root, "store/oci/index.json")
	same := func(gen string) {
		t.Helper()
		want, _ := os.ReadFile(filepath.Join(root, "generations", gen, ".offkit/images/index.json"))
		got, _ := os.ReadFile(storeIndex)
		if len(want) == 0 || string(got) != string(want) {
			t.Fatalf("store/oci/index.json is not generation %s's image index:\n%s", gen, got)
		}
	}
	same("2")
	if _, err := rollback(t, root); err != nil {
		t.Fatal(err)
	}
	same("1")
	if err := os.WriteFile(storeIndex, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	state(t, root) // any command repairs it
	same("1")
}

// TestGracePeriod: a generation that stopped being current is kept for the
// grace period (judged with the install's clock) before an install removes
// it; the generation being replaced is always kept, and rollback follows
// the chain of replaced generations, not the numbers.
func TestGracePeriod(t *testing.T) {
	key := kittest.NewKey(t)
	out := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	t0 := kittest.Created.Add(time.Hour)
	var kits []string
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"} {
		kits = append(kits, kittest.Build(t, key, "a", v, 1000, out).Path)
	}
	installAt(t, root, kits[0], key, t0, 0)                    // 1
	installAt(t, root, kits[1], key, t0.Add(1*time.Minute), 0) // 2; 1 retired at +1m
	installAt(t, root, kits[2], key, t0.Add(2*time.Minute), 0) // 3; 2 retired at +2m
	if g := generations(t, root); strings.Join(g, ",") != "1,2,3" {
		t.Fatalf("within the default grace, generation 1 was removed: %v", g)
	}
	installAt(t, root, kits[3], key, t0.Add(11*time.Minute+30*time.Second), 0) // 4; 1 is past its grace, 2 is not
	if g := generations(t, root); strings.Join(g, ",") != "2,3,4" {
		t.Fatalf("after the grace of generation 1: %v", g)
	}
	// Rollback 4 -> 3, then install 5 over 3: 4 was current until the
	// rollback and stays for its grace; 2 is removed; 3 is kept for
	// rollback, which goes to 3, not to the higher-numbered 4.
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(site.RollbackOptions{Now: t0.Add(20 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	installAt(t, root, kits[4], key, t0.Add(25*time.Minute), 0)
	if g := generations(t, root); strings.Join(g, ",") != "3,4,5" {
		t.Fatalf("after rollback and install: %v", g)
	}
	if st, err := rollback(t, root); err != nil || st.Generation != 3 {
		t.Fatalf("rollback from 5: %+v %v", st, err)
	}
	// A negative grace removes at once; what the install replaced stays.
	if _, err := install(t, root, kits[4], key, func(o *site.InstallOptions) {
		o.Now, o.Grace, o.Force, o.Reason = t0.Add(26*time.Minute), -1, true, "roll forward"
	}); err != nil {
		t.Fatal(err)
	}
	if g := generations(t, root); strings.Join(g, ",") != "3,6" {
		t.Fatalf("grace -1: %v", g)
	}
	checkConsistent(t, root)
}
