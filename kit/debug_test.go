package kit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// buildDebug builds a kit whose debug: sources are list, relative to dir.
func buildDebug(t *testing.T, key *kittest.Key, dir string, list ...manifest.DebugSource) (*kit.BuildResult, error) {
	t.Helper()
	spec := &manifest.Spec{Name: "symbols", Version: "1.0.0", CreatedAt: &kittest.Created, Debug: list}
	return kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
}

func sum(t *testing.T, file string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// A kit.yaml's debug sources of each kind (a .debug file, an unstripped
// binary also stored as the executable, a .build-id tree, and one .debug
// named twice) give debug/.build-id/<aa>/<rest>.debug and <aa>/<rest> named
// by each file's own build id, once each; debug/debug-manifest.json and the
// kit manifest's debug[] list them sorted by build id then file; the kit
// installs and the site's store and the debuginfod handler serve them.
func TestBuildDebugStore(t *testing.T) {
	dir := t.TempDir()
	a := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "a")), "")    // sha1
	b := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "b")), "md5") // 16 bytes
	c := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "c")), "0x0123456789abcdef0123")
	kittest.BuildIDTree(t, filepath.Join(dir, "tree"), c)
	key := kittest.NewKey(t)
	res, err := buildDebug(t, key, dir,
		manifest.DebugSource{Src: "a/prog.debug", Kind: manifest.DebugKindFile, Component: "api"},
		manifest.DebugSource{Src: "b/prog", Kind: manifest.DebugKindBinary, Executable: true, Component: "worker"},
		manifest.DebugSource{Src: "tree", Kind: manifest.DebugKindBuildIDTree},
		manifest.DebugSource{Src: "a/prog.debug", Kind: manifest.DebugKindFile, Component: "again"}, // same bytes: one file
	)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		id, file, src, format, component, kind string
	}
	wants := []want{
		{a.ID, ".build-id/" + a.ID[:2] + "/" + a.ID[2:] + ".debug", a.Debug, kit.FormatELFDebug, "api", "debug-file"},
		{b.ID, ".build-id/" + b.ID[:2] + "/" + b.ID[2:], b.Full, kit.FormatELFExecutable, "worker", "binary"},
		{b.ID, ".build-id/" + b.ID[:2] + "/" + b.ID[2:] + ".debug", b.Full, kit.FormatELFDebug, "worker", "binary"},
		{c.ID, ".build-id/" + c.ID[:2] + "/" + c.ID[2:], c.Stripped, kit.FormatELFExecutable, "", "build-id-tree"},
		{c.ID, ".build-id/" + c.ID[:2] + "/" + c.ID[2:] + ".debug", c.Debug, kit.FormatELFDebug, "", "build-id-tree"},
	}
	if c.ID != "0123456789abcdef0123" || len(b.ID) != 32 {
		t.Fatalf("gcc gave build ids %s, %s", b.ID, c.ID)
	}
	// Sorted by build id, then file.
	sort.Slice(wants, func(i, j int) bool {
		x, y := wants[i], wants[j]
		return x.id < y.id || x.id == y.id && x.file < y.file
	})
	var dm kit.DebugManifest
	var list []manifest.Debug
	dm.SchemaVersion = 1
	for _, w := range wants {
		s, n := sum(t, w.src)
		dm.Files = append(dm.Files, kit.DebugFileEntry{BuildID: w.id, File: w.file, SHA256: s, Size: n, Arch: runtimeELFArch(t, a.Full),
			Format: w.format, Component: w.component, SourceKind: w.kind})
		list = append(list, manifest.Debug{BuildID: w.id, Path: "debug/" + w.file, Arch: runtimeELFArch(t, a.Full), Component: w.component})
	}
	if !reflect.DeepEqual(res.Manifest.Debug, list) {
		t.Errorf("manifest debug[]:\n%+v\nwant\n%+v", res.Manifest.Debug, list)
	}
	wantJSON, _ := kit.EncodeDebugManifest(&dm)
	if !bytes.HasPrefix(wantJSON, []byte("{\n  \"schemaVersion\": 1,\n  \"files\": [\n    {\n      \"buildId\": ")) {
		t.Errorf("not two-space indented JSON:\n%s", wantJSON)
	}

	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Installed as the kit's metadata (docs/site.md), not in debug/.
	got, err := os.ReadFile(filepath.Join(root, "current", filepath.FromSlash(site.DebugManifestPath(res.Manifest.Name))))
	if err != nil || !bytes.Equal(got, wantJSON) {
		t.Errorf("installed debug-manifest.json (%v):\n%s\nwant\n%s", err, got, wantJSON)
	}
	if err := kit.CheckDebugManifest(res.Manifest, got); err != nil {
		t.Errorf("CheckDebugManifest of the built kit: %v", err)
	}
	// A debug manifest that lists a build id the kit does not carry, or
	// leaves one out, is refused.
	extra := dm
	extra.Files = append(append([]kit.DebugFileEntry{}, dm.Files...), kit.DebugFileEntry{BuildID: "ffffffffffffffffffff",
		File: ".build-id/ff/ffffffffffffffffff.debug", Format: kit.FormatELFDebug})
	short := dm
	short.Files = dm.Files[:len(dm.Files)-1]
	for name, x := range map[string]*kit.DebugManifest{"not carried": &extra, "left out": &short} {
		b, _ := kit.EncodeDebugManifest(x)
		if err := kit.CheckDebugManifest(res.Manifest, b); errdef.ExitCode(err) != 11 {
			t.Errorf("CheckDebugManifest, a file %s: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	for _, w := range wants {
		got, err := os.ReadFile(filepath.Join(root, "current", "debug", filepath.FromSlash(w.file)))
		exp, _ := os.ReadFile(w.src)
		if err != nil || !bytes.Equal(got, exp) {
			t.Errorf("%s: %v, not the bytes of %s", w.file, err, w.src)
		}
	}
	var files []string
	filepath.WalkDir(filepath.Join(root, "current", "debug"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(filepath.Join(root, "current", "debug"), p)
			files = append(files, filepath.ToSlash(r))
		}
		return nil
	})
	if len(files) != len(wants) {
		t.Errorf("installed debug/ holds %v, want the %d files", files, len(wants))
	}

	// offkit debug find's lookup, and offkit serve's debuginfod handler.
	gen, _, err := site.NewView(root).OpenGeneration()
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	for _, p := range []*kittest.DebugProgram{a, b, c} {
		f, _, name, err := debugstore.Open(gen, p.ID, debugstore.KindDebuginfo)
		if err != nil {
			t.Fatalf("%s: %v", p.ID, err)
		}
		f.Close()
		if name != debugstore.DebugPath(p.ID) {
			t.Errorf("%s: found %s", p.ID, name)
		}
	}
	srv := serve.New(serve.Config{}, nil)
	srv.Handle(debuginfod.Prefix, "buildid", debuginfod.NewHandler(site.NewView(root)))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for url, src := range map[string]string{
		"/buildid/" + b.ID + "/debuginfo":  b.Full,
		"/buildid/" + b.ID + "/executable": b.Full,
		"/buildid/" + a.ID + "/debuginfo":  a.Debug,
	} {
		r, err := ts.Client().Get(ts.URL + url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		exp, _ := os.ReadFile(src)
		if r.StatusCode != 200 || !bytes.Equal(body, exp) {
			t.Errorf("GET %s: %d, %d bytes, want %s", url, r.StatusCode, len(body), src)
		}
	}
	if r, err := ts.Client().Get(ts.URL + "/buildid/" + a.ID + "/executable"); err != nil || r.StatusCode != 404 {
		t.Errorf("executable of a .debug-only source: %v %v", r, err)
	} else {
		r.Body.Close()
	}
}

func mk(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// runtimeELFArch is the arch the debug manifest records for the gcc
// programs of this machine.
func runtimeELFArch(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	id, err := debugstore.ReadBuildID(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	switch m := id.Machine.String(); m {
	case "EM_X86_64":
		return "amd64"
	case "EM_AARCH64":
		return "arm64"
	default:
		t.Skipf("gcc targets %s here", m)
	}
	return ""
}

// Refusals, each exit 11 naming the file(s) at fault: one build id with two
// different contents (naming both sources), a file in a .build-id tree
// whose build id is not its name, a file without a GNU build id, a file
// that is not ELF.
func TestBuildDebugRefusals(t *testing.T) {
	dir := t.TempDir()
	a := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "a")), "")
	b := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "b")), "md5")
	// a's .debug stored under b's id.
	tree := filepath.Join(dir, "tree", ".build-id", b.ID[:2])
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(tree, b.ID[2:]+".debug")
	if data, err := os.ReadFile(a.Debug); err != nil || os.WriteFile(bad, data, 0o644) != nil {
		t.Fatal(err)
	}
	// a's .debug at a name that is no build id's.
	odd := filepath.Join(dir, "oddtree", ".build-id", a.ID[:2], "prog.debug")
	if err := os.MkdirAll(filepath.Dir(odd), 0o755); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(a.Debug); err != nil || os.WriteFile(odd, data, 0o644) != nil {
		t.Fatal(err)
	}
	// a's .debug without its build id note.
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy not installed")
	}
	noID := filepath.Join(dir, "noid.debug")
	if out, err := exec.Command(objcopy, "--remove-section", ".note.gnu.build-id", a.Debug, noID).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	notELF := filepath.Join(dir, "readme.debug")
	if err := os.WriteFile(notELF, []byte("not ELF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := kittest.NewKey(t)
	for _, tc := range []struct {
		name  string
		list  []manifest.DebugSource
		names []string
	}{
		{"same id, other bytes", []manifest.DebugSource{
			{Src: "a/prog.debug", Kind: manifest.DebugKindFile},
			{Src: "a/prog", Kind: manifest.DebugKindBinary},
		}, []string{a.Debug, a.Full, a.ID, "spec /debug/0", "spec /debug/1"}},
		{"mislabelled in a .build-id tree", []manifest.DebugSource{
			{Src: "tree", Kind: manifest.DebugKindBuildIDTree},
		}, []string{bad, "named for build id " + b.ID, "its build id is " + a.ID}},
		{"not a build id's name in a .build-id tree", []manifest.DebugSource{
			{Src: "oddtree", Kind: manifest.DebugKindBuildIDTree},
		}, []string{odd, "not <aa>/<rest>.debug or <aa>/<rest>"}},
		{"no build id", []manifest.DebugSource{
			{Src: "noid.debug", Kind: manifest.DebugKindFile},
		}, []string{noID, "no GNU build id"}},
		{"not ELF", []manifest.DebugSource{
			{Src: "readme.debug", Kind: manifest.DebugKindFile},
		}, []string{notELF}},
		{"dest with a kind", []manifest.DebugSource{
			{Src: "a/prog.debug", Dest: "x", Kind: manifest.DebugKindFile},
		}, []string{"spec /debug/0/dest"}},
		{"unknown kind", []manifest.DebugSource{
			{Src: "a/prog.debug", Kind: "container-image"},
		}, []string{"spec /debug/0/kind"}},
		{"paths on a source that is no image", []manifest.DebugSource{
			{Src: "a/prog.debug", Kind: manifest.DebugKindFile, Paths: []string{"/usr/bin/x"}},
		}, []string{"spec /debug/0/paths"}},
		{"image source without images", []manifest.DebugSource{
			{Src: "registry.example/app:1", Kind: manifest.DebugKindImage},
		}, []string{"spec /debug/0/src", "not the ref of an image"}},
	} {
		_, err := buildDebug(t, key, dir, tc.list...)
		t.Logf("%s: %v", tc.name, err)
		if errdef.ExitCode(err) != 11 {
			t.Errorf("%s: %v (exit %d), want exit 11", tc.name, err, errdef.ExitCode(err))
			continue
		}
		for _, n := range tc.names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("%s: %v does not name %s", tc.name, err, n)
			}
		}
	}
}

// A kit.yaml whose debug: source has no kind (written before kinds
// existed) still copies its tree as it is, with no debug manifest.
func TestBuildDebugPlainTree(t *testing.T) {
	dir := t.TempDir()
	a := kittest.GCCProgram(t, filepath.Join(dir, mk(t, dir, "a")), "")
	kittest.BuildIDTree(t, filepath.Join(dir, "symbols"), a)
	res, err := buildDebug(t, kittest.NewKey(t), dir, manifest.DebugSource{Src: "symbols", Dest: "."})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range res.Manifest.Entries {
		paths = append(paths, e.Path)
	}
	want := []string{"debug/.build-id/" + a.ID[:2] + "/" + a.ID[2:], "debug/.build-id/" + a.ID[:2] + "/" + a.ID[2:] + ".debug"}
	if !reflect.DeepEqual(paths, want) || len(res.Manifest.Debug) != 0 {
		b, _ := json.Marshal(res.Manifest)
		t.Errorf("entries %v, want %v and no debug[]: %s", paths, want, b)
	}
}

// A signed kit whose manifest's debug[] lists a build id it does not carry
// is refused by verify (exit 11) naming the debug[] entry; the same kit
// listing only what it carries verifies.
func TestVerifyDebugListNotCarried(t *testing.T) {
	key := kittest.NewKey(t)
	id := "0123456789abcdef0123"
	path := "debug/.build-id/01/23456789abcdef0123.debug"
	for _, tc := range []struct {
		name string
		edit func([]manifest.Debug) []manifest.Debug
		code int
	}{
		{"carried", nil, 0},
		{"not carried", func(l []manifest.Debug) []manifest.Debug {
			return append(l, manifest.Debug{BuildID: "ffffffffffffffffffff", Path: "debug/.build-id/ff/ffffffffffffffffff.debug"})
		}, 11},
	} {
		c := kittest.DebugCraft{Key: key, Files: map[string][]byte{path: kittest.DebugELF(t, id, 0)}, EditDebugList: tc.edit}
		p := c.Write(t, t.TempDir())
		_, err := verify.File(context.Background(), p, verify.Options{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)})
		if code := errdef.ExitCode(err); code != tc.code || tc.code != 0 && !strings.Contains(err.Error(), `debug[1] "ffffffffffffffffffff" path`) {
			t.Errorf("%s: %v (exit %d), want exit %d", tc.name, err, code, tc.code)
		}
	}
}
