package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
	"github.com/offkit/offkit/site"
)

// install 1.4.2, install 1.4.3, rollback: installing that same 1.4.3 again
// is a roll-forward (exit 0, no --force-activate); another kit also
// versioned 1.4.3, or 1.4.2 rebuilt differently, is exit 8.
func TestRollForwardExitCodes(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	root := filepath.Join(t.TempDir(), "site")
	build := func(version string, size int) string {
		return kittest.Build(t, f.key, "zastava-runtime", version, size, t.TempDir()).Path
	}
	v142, v143 := build("1.4.2", 100<<10), build("1.4.3", 200<<10)
	other143, rebuilt142 := build("1.4.3", 300<<10), build("1.4.2", 150<<10)
	r.ok("install", v142, "--root", root, "--key", f.pub)
	r.ok("install", v143, "--root", root, "--key", f.pub)
	r.ok("rollback", "--root", root)
	r.fails(errdef.ExitNotNewer, []string{"install", other143, "--root", root, "--key", f.pub}, "high-water version is 1.4.3")
	r.fails(errdef.ExitNotNewer, []string{"install", rebuilt142, "--root", root, "--key", f.pub}, "high-water version is 1.4.3")
	res := r.ok("install", v143, "--root", root, "--key", f.pub)
	if !strings.Contains(res.stdout, "installed zastava-runtime 1.4.3 (was 1.4.2)") || !strings.Contains(res.stdout, "rolled forward") {
		t.Errorf("roll-forward output:\n%s", res.stdout)
	}
	r.ok("rollback", "--root", root)
	out := r.ok("install", v143, "--root", root, "--key", f.pub, "--json")
	checkSchema(t, schemas.OutputInstall, out.stdout)
	if !strings.Contains(out.stdout, `"rollForward": true`) && !strings.Contains(out.stdout, `"rollForward":true`) {
		t.Errorf("install --json of a roll-forward: %s", out.stdout)
	}
}

// listTree lists every name under root with its mode, size, modification
// time and link target: any write shows.
func listTree(t *testing.T, root string) string {
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
		lines = append(lines, strings.Join([]string{rel, fi.Mode().String(), strconv.FormatInt(fi.Size(), 10), fi.ModTime().String(), l}, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// status takes no lock and writes nothing: while an install holds the
// lock it answers at once and says an install is in progress; on a copy of
// a site without .lock and state.json (as a read-only mount would be) it
// reports the kits and creates nothing.
func TestStatusReadsWithoutLock(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", f.kit(t, "app", "1.0.0"), "--root", root, "--key", f.pub)

	locked, err := site.Open(root, false) // what a running install holds
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan [2]result, 1)
	go func() {
		done <- [2]result{r.run("status", "--root", root), r.run("status", "--root", root, "--json")}
	}()
	select {
	case res := <-done:
		if res[0].code != 0 || !strings.Contains(res[0].stdout, "in progress") || !strings.Contains(res[0].stdout, "app") {
			t.Errorf("status during an install: exit %d\nstdout: %s\nstderr: %s", res[0].code, res[0].stdout, res[0].stderr)
		}
		checkSchema(t, schemas.OutputStatus, res[1].stdout)
		var st siteStatus
		if err := json.Unmarshal([]byte(res[1].stdout), &st); err != nil || !st.InstallInProgress || st.Generation != 1 {
			t.Errorf("status --json during an install: %v %s", err, res[1].stdout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("status waited for the install lock")
	}
	locked.Close()
	if res := r.ok("status", "--root", root); strings.Contains(res.stdout, "in progress") {
		t.Errorf("status with no install running:\n%s", res.stdout)
	}

	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", root, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	os.Remove(filepath.Join(cp, ".lock"))
	os.Remove(filepath.Join(cp, "state.json"))
	before := listTree(t, cp)
	res := r.ok("status", "--root", cp)
	if !strings.Contains(res.stdout, "generation 1") || !strings.Contains(res.stdout, "app") {
		t.Errorf("status of the copy:\n%s", res.stdout)
	}
	r.ok("status", "--root", cp, "--check", "--json")
	if after := listTree(t, cp); after != before {
		t.Errorf("status wrote into the site:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// install --dry-run works for a first install: into a root that does not
// exist, or an empty one, it verifies, reports and creates nothing.
func TestDryRunFirstInstall(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	k := f.kit(t, "app", "1.0.0")
	missing := filepath.Join(t.TempDir(), "new", "site")
	res := r.ok("install", k, "--root", missing, "--key", f.pub, "--dry-run")
	if !strings.Contains(res.stdout, "dry run: app 1.0.0 verified") {
		t.Errorf("dry run:\n%s", res.stdout)
	}
	checkSchema(t, schemas.OutputInstall, r.ok("install", k, "--root", missing, "--key", f.pub, "--dry-run", "--json").stdout)
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("a dry run created %s", filepath.Dir(missing))
	}
	// A kit that fails verification: the error, and still nothing.
	r.fails(errdef.ExitSignature, []string{"install", k, "--root", missing, "--key", otherKey(t), "--dry-run"})
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("a refused dry run created %s", filepath.Dir(missing))
	}

	empty := t.TempDir()
	r.ok("install", k, "--root", empty, "--key", f.pub, "--dry-run")
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("a dry run into an empty root left %v", names)
	}
	// Then the real install works there.
	r.ok("install", k, "--root", empty, "--key", f.pub)
}
