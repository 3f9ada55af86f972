package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// offkit debug find ID prints the installed .debug file and executable of
// a gcc-built program; an unknown id is exit 1, an id that is no build id
// (hostile or odd) exit 11; upper case folds to lower.
func TestDebugFind(t *testing.T) {
	prog := kittest.GCCProgram(t, t.TempDir(), "")
	key := kittest.NewKey(t)
	res := kittest.DebugKit(t, key, "symbols", "1.0.0", prog)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	gen, err := site.NewView(root).Generation()
	if err != nil {
		t.Fatal(err)
	}
	id := prog.ID
	want := filepath.Join(gen, "debug", ".build-id", id[:2], id[2:]) + ".debug\n" + filepath.Join(gen, "debug", ".build-id", id[:2], id[2:]) + "\n"
	r := newRunner(t)
	for _, arg := range []string{id, strings.ToUpper(id)} {
		if out := r.ok("debug", "find", arg, "--root", root); out.stdout != want {
			t.Errorf("debug find %s: %q, want %q", arg, out.stdout, want)
		}
	}
	r.fails(errdef.ExitNotFound, []string{"debug", "find", strings.Repeat("0", 40), "--root", root}, strings.Repeat("0", 40))
	for _, bad := range []string{"../../etc/passwd", "%2e%2e", id[1:], id + "0", "0102030405060", strings.Repeat("a", 1<<20), id[:38] + "zz"} {
		r.fails(errdef.ExitInvalid, []string{"debug", "find", bad, "--root", root}, "not a build id")
	}
	r.fails(errdef.ExitNotFound, []string{"debug", "find", id, "--root", t.TempDir()})
}
