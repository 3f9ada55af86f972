package debugstore_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/debugtest"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

func TestParseID(t *testing.T) {
	for in, want := range map[string]string{
		"0102030405060708":                         "0102030405060708", // 8 bytes, --build-id=0x…
		"3F1C9A0455E217B86D20418EC05B937A12F4680D": "3f1c9a0455e217b86d20418ec05b937a12f4680d",
		strings.Repeat("ab", 64):                   strings.Repeat("ab", 64),
	} {
		if got, err := debugstore.ParseID(in); err != nil || got != want {
			t.Errorf("ParseID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "01020304050607", "010203040506070", strings.Repeat("ab", 65), "../../etc/passwd",
		"%2e%2e%2e%2e%2e%2e%2e%2e", "0102030405060708/", "01020304050607g8", strings.Repeat("a", 1<<20),
		"0102030405060708\x00", " 0102030405060708",
	} {
		if _, err := debugstore.ParseID(in); !errors.Is(err, debugstore.ErrBadID) || !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("ParseID(%.40q): %v", in, err)
		} else if len(err.Error()) > 300 {
			t.Errorf("ParseID: error of %d bytes", len(err.Error()))
		}
	}
}

// debugSite is a site with one kit whose debug: source is the .build-id
// tree of a gcc-built program, installed by site.Install.
type debugSite struct {
	root string
	prog *kittest.DebugProgram
}

func newDebugSite(t *testing.T) *debugSite {
	t.Helper()
	root, prog := debugtest.Site(t)
	return &debugSite{root: root, prog: prog}
}

// The installed generation holds the .build-id tree as gdb and elfutils
// read it: ROOT/current/debug/.build-id/<aa>/<rest>.debug is the .debug
// file byte for byte, <aa>/<rest> the stripped executable; Open finds both
// inside the generation and nothing for an unknown id.
func TestInstalledStore(t *testing.T) {
	ds := newDebugSite(t)
	id := ds.prog.ID
	for name, src := range map[string]string{
		filepath.Join(ds.root, "current", "debug", ".build-id", id[:2], id[2:]+".debug"): ds.prog.Debug,
		filepath.Join(ds.root, "current", "debug", ".build-id", id[:2], id[2:]):          ds.prog.Stripped,
	} {
		got, err := os.ReadFile(name)
		want, _ := os.ReadFile(src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, not %s", name, err, src)
		}
	}
	gen, _, err := site.NewView(ds.root).OpenGeneration()
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	for _, k := range []debugstore.Kind{debugstore.KindDebuginfo, debugstore.KindExecutable} {
		f, st, name, err := debugstore.Open(gen, id, k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		f.Close()
		if want := "debug/.build-id/" + id[:2] + "/" + id[2:]; strings.TrimSuffix(name, ".debug") != want || st.Size() == 0 {
			t.Errorf("%s: %s (%d bytes)", k, name, st.Size())
		}
	}
	if _, _, _, err := debugstore.Open(gen, strings.Repeat("0", 40), debugstore.KindDebuginfo); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	// A symlink in the store, even to a file of the generation, is not
	// followed: refused as invalid, naming the file.
	exe := filepath.Join(ds.root, "current", "debug", ".build-id", id[:2], id[2:])
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(id[2:]+".debug", exe); err != nil {
		t.Fatal(err)
	}
	if f, _, name, err := debugstore.Open(gen, id, debugstore.KindExecutable); err == nil {
		f.Close()
		t.Errorf("%s: a symlink was opened", name)
	} else if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("%s: %v, want it refused as a symlink", name, err)
	}

	// gdb, pointed at ROOT/current/debug, loads the symbols of the stripped
	// program from the .debug file by its build id.
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Log("gdb not installed: not checked with gdb")
		return
	}
	// The stripped program alone in a folder: only the build id finds
	// its symbols (not its .gnu_debuglink next to it).
	lone := filepath.Join(t.TempDir(), "prog")
	b, err := os.ReadFile(ds.prog.Stripped)
	if err != nil || os.WriteFile(lone, b, 0o755) != nil {
		t.Fatal(err)
	}
	gdbLine := func(dir string) string {
		out, _ := exec.Command(gdb, "-nx", "-batch", "-iex", "set debug-file-directory "+dir, "-ex", "info line answer", lone).CombinedOutput()
		return string(out)
	}
	if out := gdbLine(filepath.Join(ds.root, "current", "debug")); !strings.Contains(out, `prog.c" starts at address`) {
		t.Errorf("gdb with debug-file-directory ROOT/current/debug: no source line for answer:\n%s", out)
	}
	if out := gdbLine(t.TempDir()); strings.Contains(out, `prog.c" starts at address`) {
		t.Errorf("gdb finds the symbols without the store:\n%s", out)
	}
}
