package site

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
)

// TestKillDuringRemoval kills `install` (a child process, SIGKILL) at every
// step of its commit: publishing, the generation rename, the switch of
// `current`, and file by file while it removes an old generation of 100
// files (300 with OFFKIT_TORTURE_LONG=1). After each kill, recovery runs and two rollbacks are tried; the
// site must be consistent, an uncommitted install must have left nothing,
// status must only offer a complete generation, and no rollback may land
// on an incomplete one. The kills are made by the child itself, from the
// package's test hook, at the chosen step. This short version kills at every
// step but the removal, and at a few points of the removal;
// OFFKIT_TORTURE_LONG=1 kills at every point of the removal too, then at
// random instants.
func TestKillDuringRemoval(t *testing.T) {
	if os.Getenv("OFFKIT_TORTURE_CHILD") != "" {
		tortureChild(t)
		return
	}
	long := os.Getenv("OFFKIT_TORTURE_LONG") != ""
	key := kittest.NewKey(t)
	keyDir := t.TempDir()
	_, pub := key.WriteKeys(t, keyDir)
	files := 100
	if long {
		files = 300
	}
	template := filepath.Join(t.TempDir(), "template")
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := installWith(t, template, kittest.SiteKit(t, key, "a", v, filesOf(v, files), "stellaops/a:1").Path, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Without a kill the child's install makes generation 3 and removes
	// generation 1 (grace -1); the hook counts its steps.
	next := kittest.SiteKit(t, key, "a", "1.0.2", filesOf("1.0.2", files), "stellaops/a:1").Path
	before := tree(t, template, false)
	var steps []string
	{
		root := copySite(t, template)
		countFile := filepath.Join(t.TempDir(), "steps")
		if err := child(root, next, pub, 0, countFile).Run(); err != nil {
			t.Fatalf("child without a kill: %v", err)
		}
		b, _ := os.ReadFile(countFile)
		steps = strings.Fields(string(b))
		if g := gens(t, root); g != "2,3" {
			t.Fatalf("the child's install left generations %s", g)
		}
	}
	removes := 0
	for _, s := range steps {
		if s == "remove" {
			removes++
		}
	}
	if removes < files {
		t.Fatalf("the removal of generation 1 took %d steps: %v", removes, steps)
	}
	var points []int
	for i, s := range steps {
		k := i + 1
		if s != "remove" || long {
			points = append(points, k)
			continue
		}
		if r := k - (len(steps) - removes); r == 1 || r == removes/2 || r == removes {
			points = append(points, k)
		}
	}
	for _, k := range points {
		root := copySite(t, template)
		err := child(root, next, pub, k, "").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("kill at step %d (%s): the child was not killed: %v", k, steps[k-1], err)
		}
		afterKill(t, root, before, fmt.Sprintf("kill at step %d (%s)", k, steps[k-1]))
	}
	if !long {
		return
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 40; i++ {
		root := copySite(t, template)
		cmd := child(root, next, pub, 0, "")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		afterKill(t, root, before, fmt.Sprintf("random kill %d", i))
	}
}

func filesOf(version string, n int) map[string]string {
	files := map[string]string{}
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("a/f%03d.txt", i)] = fmt.Sprintf("%s file %d\n", version, i)
	}
	return files
}

// afterKill runs recovery and two rollbacks on a site whose install was
// killed, checking what an operator relies on.
func afterKill(t *testing.T, root, before, what string) {
	t.Helper()
	s, err := Open(root, false)
	if err != nil {
		t.Fatalf("%s: recovery: %v", what, err)
	}
	defer s.Close()
	healthy := func(when string) int {
		t.Helper()
		cur, err := s.currentGeneration()
		if err != nil {
			t.Fatalf("%s, %s: %v", what, when, err)
		}
		st, err := s.State()
		if err != nil || st.Generation != cur {
			t.Fatalf("%s, %s: state says %+v, current is %d (%v)", what, when, st, cur, err)
		}
		if err := s.checkGeneration(cur, ""); err != nil {
			t.Fatalf("%s, %s: status reports generation %d, which is incomplete: %v", what, when, cur, err)
		}
		if p := s.PreviousGeneration(); p != 0 {
			if err := s.checkGeneration(p, ""); err != nil {
				t.Fatalf("%s, %s: status offers rollback to %d: %v", what, when, p, err)
			}
		}
		entries, _ := os.ReadDir(s.path(genDir))
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				t.Fatalf("%s, %s: generations/%s left", what, when, e.Name())
			}
		}
		if entries, _ := os.ReadDir(s.path(stagingDir)); len(entries) != 0 {
			t.Fatalf("%s, %s: staging not cleaned", what, when)
		}
		return cur
	}
	cur := healthy("after recovery")
	if cur == 2 {
		// Not committed: nothing of the install may remain.
		if after := tree(t, root, false); after != before {
			t.Fatalf("%s: the uncommitted install left traces:\n%s\n---\n%s", what, before, after)
		}
	}
	for i := 0; i < 2; i++ {
		st, err := s.Rollback(RollbackOptions{})
		if err != nil {
			if c := errdef.ExitCode(err); c != errdef.ExitNotFound && c != errdef.ExitMismatch {
				t.Fatalf("%s: rollback %d: %v", what, i+1, err)
			}
			if now := healthy(fmt.Sprintf("after refused rollback %d", i+1)); now != cur {
				t.Fatalf("%s: a refused rollback moved current from %d to %d", what, cur, now)
			}
			continue
		}
		cur = healthy(fmt.Sprintf("after rollback %d to %d", i+1, st.Generation))
	}
}

func gens(t *testing.T, root string) string {
	entries, err := os.ReadDir(filepath.Join(root, genDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, ",")
}

// copySite copies a site root: hard links (cp -al keeps `current` a
// symlink), as the site never writes a file in place but audit.log, which
// is copied.
func copySite(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "site")
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	audit := filepath.Join(dst, auditFile)
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(audit); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(audit, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func child(root, kitPath, pub string, killAt int, countFile string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringRemoval$")
	cmd.Env = append(os.Environ(), "OFFKIT_TORTURE_CHILD=1", "OFFKIT_ROOT="+root, "OFFKIT_KIT="+kitPath,
		"OFFKIT_PUB="+pub, "OFFKIT_KILL_AT="+strconv.Itoa(killAt), "OFFKIT_COUNT="+countFile)
	return cmd
}

// tortureChild installs OFFKIT_KIT with grace -1, SIGKILLing itself at
// step OFFKIT_KILL_AT of the hook (0: never), and writes the steps it went
// through to OFFKIT_COUNT when set.
func tortureChild(t *testing.T) {
	b, _ := os.ReadFile(os.Getenv("OFFKIT_PUB"))
	pub, err := sign.LoadPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	killAt, _ := strconv.Atoi(os.Getenv("OFFKIT_KILL_AT"))
	s, err := Open(os.Getenv("OFFKIT_ROOT"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var steps []string
	s.hook = func(p string) error {
		steps = append(steps, p)
		if len(steps) == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}
	_, err = s.Install(context.Background(), os.Getenv("OFFKIT_KIT"), InstallOptions{
		Keys: []*sign.PublicKey{pub}, Now: kittest.Created.Add(time.Hour), Grace: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := os.Getenv("OFFKIT_COUNT"); f != "" {
		if err := os.WriteFile(f, []byte(strings.Join(steps, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
