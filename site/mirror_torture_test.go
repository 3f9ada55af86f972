package site

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/mirror"
)

func feedExport(id string) kittest.SiteMirrorExport {
	return kittest.SiteMirrorExport{Kind: "concelier", ExportID: id, Domains: []string{"primary", "community"}, Created: "2025-11-21T00:00:00Z"}
}

// latestOf returns the exportId generation gdir's concelier latest link
// names, after checking exports.json agrees and the link resolves.
func latestOf(t *testing.T, gdir, what string) string {
	t.Helper()
	x, err := readExports(gdir)
	if err != nil || x == nil {
		t.Fatalf("%s: exports.json: %v", what, err)
	}
	target, err := os.Readlink(filepath.Join(gdir, "mirror/concelier/latest"))
	if err != nil || target != x.Latest["concelier"] {
		t.Fatalf("%s: latest -> %q (%v), exports.json says %q", what, target, err, x.Latest["concelier"])
	}
	if _, err := os.Stat(filepath.Join(gdir, "mirror/concelier/latest/mirror/primary/bundle.json")); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return target
}

// TestMirrorKillAtEachStep kills (SIGKILL) an install that replaces export
// B by C at every step of its commit and of the removal of the oldest
// generation: after recovery, current serves either B (with A retained) or
// C (with B retained), whole, and rollbacks land only on complete
// generations (afterKill).
func TestMirrorKillAtEachStep(t *testing.T) {
	key := kittest.NewKey(t)
	_, pub := key.WriteKeys(t, t.TempDir())
	dir := t.TempDir()
	template := filepath.Join(t.TempDir(), "template")
	for i, id := range []string{"20251121T000000Z", "20251122T000000Z"} {
		k := kittest.MirrorSiteKit(t, key, dir, "feeds", fmt.Sprintf("1.0.%d", i), nil, feedExport(id))
		if _, err := installWith(t, template, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	next := kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.2", nil, feedExport("20251123T000000Z"))
	before := tree(t, template, false)
	root := copySite(t, template)
	countFile := filepath.Join(t.TempDir(), "steps")
	if err := child(root, next, pub, 0, countFile).Run(); err != nil {
		t.Fatalf("child without a kill: %v", err)
	}
	b, _ := os.ReadFile(countFile)
	steps := strings.Fields(string(b))
	if g := latestOf(t, filepath.Join(root, "current"), "no kill"); g != "20251123T000000Z" {
		t.Fatalf("no kill: latest %s", g)
	}
	for k := 1; k <= len(steps); k++ {
		what := fmt.Sprintf("kill at step %d (%s)", k, steps[k-1])
		root := copySite(t, template)
		err := child(root, next, pub, k, "").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: the child was not killed: %v", what, err)
		}
		s, err := Open(root, false)
		if err != nil {
			t.Fatalf("%s: recovery: %v", what, err)
		}
		cur, _ := s.currentGeneration()
		s.Close()
		x, _ := readExports(filepath.Join(root, genDir, fmt.Sprint(cur)))
		want := map[int]string{2: "20251122T000000Z 20251121T000000Z", 3: "20251123T000000Z 20251122T000000Z"}[cur]
		latest := latestOf(t, filepath.Join(root, "current"), what)
		got := latest
		for _, e := range x.Exports {
			if e.ExportID != latest && !e.Retained {
				t.Fatalf("%s: %s is active beside latest %s", what, e.ExportID, got)
			}
			got += " " + map[bool]string{true: e.ExportID}[e.Retained]
		}
		if strings.Join(strings.Fields(got), " ") != want {
			t.Fatalf("%s: generation %d holds %q, want %q", what, cur, got, want)
		}
		afterKill(t, root, before, what)
	}
}

// A rollback checks the target's mirror part: a retained file gone or a
// latest link changed refuses it (exit 2), naming the path.
func TestMirrorRollbackChecksExports(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	for _, damage := range []string{"retained file", "latest link", "exports.json"} {
		root := filepath.Join(t.TempDir(), "site")
		for i, id := range []string{"20251121T000000Z", "20251122T000000Z", "20251123T000000Z"} {
			k := kittest.MirrorSiteKit(t, key, dir, "feeds", fmt.Sprintf("1.0.%d", i), nil, feedExport(id))
			if _, err := installWith(t, root, k, key, nil); err != nil {
				t.Fatal(err)
			}
		}
		g2 := filepath.Join(root, genDir, "2")
		var want string
		switch damage {
		case "retained file":
			want = filepath.Join(g2, "mirror/concelier/20251121T000000Z/mirror/community/bundle.json")
			if err := os.Remove(want); err != nil {
				t.Fatal(err)
			}
		case "latest link":
			want = filepath.Join(g2, "mirror/concelier/latest")
			os.Remove(want)
			if err := os.Symlink("20251121T000000Z", want); err != nil {
				t.Fatal(err)
			}
		case "exports.json":
			want = filepath.Join(g2, mirror.SiteExportsPath)
			os.Chmod(want, 0o644)
			if err := os.WriteFile(want, []byte(`{"exports":[{"kind":"concelier","exportId":"..","files":[]}],"latest":{}}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(root, false)
		if err != nil {
			t.Fatal(err)
		}
		if p := s.PreviousGeneration(); p != 0 {
			t.Errorf("%s: status offers a rollback to %d", damage, p)
		}
		_, err = s.Rollback(RollbackOptions{})
		s.Close()
		if errdef.ExitCode(err) != errdef.ExitMismatch || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: rollback: %v", damage, err)
		}
		if cur := latestOf(t, filepath.Join(root, "current"), damage); cur != "20251123T000000Z" {
			t.Errorf("%s: a refused rollback moved latest to %s", damage, cur)
		}
	}
}
