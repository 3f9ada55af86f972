package kittest

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// DebugProgram is a C program linked by gcc with -g and a build id, split
// as distributions split theirs: Debug (objcopy --only-keep-debug) and
// Stripped (strip --strip-debug --strip-unneeded, with a .gnu_debuglink
// to Debug's name).
type DebugProgram struct {
	ID                    string // the GNU build id, lowercase hex
	Full, Debug, Stripped string // files
}

// DebugProgramSource is the program's source.
const DebugProgramSource = `#include <stdio.h>
static int answer(int x) { return x * 6 + 0; }
int main(void) { printf("%d\n", answer(7)); return 0; }
`

// GCCProgram compiles DebugProgramSource in dir with gcc -g
// -Wl,--build-id=BUILDID (sha1 when BUILDID is ""), and splits it with
// objcopy and strip; it skips the test when gcc, objcopy or strip is
// missing or cannot link.
func GCCProgram(t testing.TB, dir, buildID string) *DebugProgram {
	t.Helper()
	tools := map[string]string{}
	for _, name := range []string{"gcc", "objcopy", "strip"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not installed", name)
		}
		tools[name] = p
	}
	if buildID == "" {
		buildID = "sha1"
	}
	src := filepath.Join(dir, "prog.c")
	if err := os.WriteFile(src, []byte(DebugProgramSource), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &DebugProgram{Full: filepath.Join(dir, "prog"), Debug: filepath.Join(dir, "prog.debug"), Stripped: filepath.Join(dir, "prog.stripped")}
	if out, err := exec.Command(tools["gcc"], "-g", "-O0", "-Wl,--build-id="+buildID, "-o", p.Full, src).CombinedOutput(); err != nil {
		t.Skipf("gcc cannot link here: %v\n%s", err, out)
	}
	for _, c := range [][]string{
		{tools["objcopy"], "--only-keep-debug", p.Full, p.Debug},
		{tools["strip"], "--strip-debug", "--strip-unneeded", "-o", p.Stripped, p.Full},
		{tools["objcopy"], "--add-gnu-debuglink=" + p.Debug, p.Stripped},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	f, err := elf.Open(p.Full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatalf("%s: no .note.gnu.build-id", p.Full)
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		t.Fatalf("%s: build id note: %v", p.Full, err)
	}
	p.ID = hex.EncodeToString(b[16:]) // namesz 4, descsz, type, "GNU\0"
	return p
}

// BuildIDTree writes the .build-id tree of progs under dir/.build-id:
// <aa>/<rest>.debug is each Debug, <aa>/<rest> each Stripped.
func BuildIDTree(t testing.TB, dir string, progs ...*DebugProgram) string {
	t.Helper()
	for _, p := range progs {
		d := filepath.Join(dir, ".build-id", p.ID[:2])
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for src, dst := range map[string]string{p.Debug: p.ID[2:] + ".debug", p.Stripped: p.ID[2:]} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, dst), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// DebugKit builds kit name at version, signed by key, whose debug: source
// is the .build-id tree of progs, kind build-id-tree (kit paths
// debug/.build-id/<aa>/<rest>.debug and debug/.build-id/<aa>/<rest>, and
// debug/debug-manifest.json).
func DebugKit(t testing.TB, key *Key, name, version string, progs ...*DebugProgram) *kit.BuildResult {
	t.Helper()
	dir := t.TempDir()
	BuildIDTree(t, filepath.Join(dir, "symbols"), progs...)
	spec := &manifest.Spec{Name: name, Version: version, CreatedAt: &Created,
		Debug: []manifest.DebugSource{{Src: "symbols", Kind: manifest.DebugKindBuildIDTree}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
