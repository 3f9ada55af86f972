package kit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

func TestBuildIsDeterministic(t *testing.T) {
	key := kittest.NewKey(t)
	a := kittest.Build(t, key, "zastava-runtime", "1.4.2", 1<<20, t.TempDir())
	b := kittest.Build(t, key, "zastava-runtime", "1.4.2", 1<<20, t.TempDir())
	for _, suffix := range []string{"", ".sig"} {
		x, _ := os.ReadFile(a.Path + suffix)
		y, _ := os.ReadFile(b.Path + suffix)
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Fatalf("two builds differ in %q (%d vs %d bytes)", "K"+suffix, len(x), len(y))
		}
	}
}

func TestConcurrencyDoesNotChangeBytes(t *testing.T) {
	src := t.TempDir()
	kittest.Files(t, src, map[string]string{"files/x.bin": strings.Repeat("offkit ", 300000), "files/y.txt": "y"})
	spec := &manifest.Spec{Name: "c", Version: "1.0.0", CreatedAt: &kittest.Created,
		Compression: &manifest.SpecCompress{FrameSize: 128 << 10},
		Files:       []manifest.FileSource{{Src: "files"}}}
	var outs [][]byte
	for _, conc := range []int{1, 2, 8} {
		res, err := kit.Build(context.Background(), spec, kit.BuildOptions{Dir: src, OutDir: t.TempDir(), Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(res.Path)
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Fatal("kit bytes depend on the number of compression goroutines")
	}
}

func TestSignLaterEqualsSignedBuild(t *testing.T) {
	key := kittest.NewKey(t)
	signed := kittest.Build(t, key, "a", "1.0.0", 700<<10, t.TempDir())
	unsigned := kittest.Build(t, nil, "a", "1.0.0", 700<<10, t.TempDir())
	if _, err := kit.Sign(unsigned.Path, key.Private); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", ".sig"} {
		x, _ := os.ReadFile(signed.Path + suffix)
		y, _ := os.ReadFile(unsigned.Path + suffix)
		if !bytes.Equal(x, y) {
			t.Fatalf("offkit sign gave a different %q than building with the key", "K"+suffix)
		}
	}
}

func TestHeadAndLayout(t *testing.T) {
	key := kittest.NewKey(t)
	res := kittest.Build(t, key, "a", "1.0.0", 1000, t.TempDir())
	h, err := kitfile.ReadHead(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if manifest.Digest(h.ManifestBytes) != res.ManifestDigest || h.Signature == nil {
		t.Fatal("head does not hold the manifest and its signature")
	}
	if err := key.Public.VerifyBlob(h.ManifestBytes, h.Signature); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Path) != "a-1.0.0.kit.tar.zst" {
		t.Fatal(res.Path)
	}
	for _, p := range []string{res.Path, res.Path + ".sig"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: mode %v (%v), want 0644: a kit is published", p, st.Mode(), err)
		}
	}
	if _, err := kit.Sign(res.Path, key.Private); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(res.Path); st.Mode().Perm() != 0o644 {
		t.Fatalf("after sign: mode %v, want 0644", st.Mode())
	}
}

func TestBuildRefusesBadSources(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		spec  manifest.Spec
		err   error
		text  string
	}{
		{"rules not yaml", map[string]string{"r.yaml": "groups: [\n"}, manifest.Spec{Rules: []manifest.FileSource{{Src: "r.yaml"}}}, errdef.ErrInvalid, "invalid YAML"},
		{"group without name", map[string]string{"r.yaml": "groups:\n  - rules:\n      - alert: A\n        expr: up\n"}, manifest.Spec{Rules: []manifest.FileSource{{Src: "r.yaml"}}}, errdef.ErrInvalid, "no name"},
		{"group without rules", map[string]string{"r.yaml": "groups:\n  - name: g\n"}, manifest.Spec{Rules: []manifest.FileSource{{Src: "r.yaml"}}}, errdef.ErrInvalid, "no rules"},
		{"rule without expr", map[string]string{"r.yaml": "groups:\n  - name: g\n    rules:\n      - alert: A\n"}, manifest.Spec{Rules: []manifest.FileSource{{Src: "r.yaml"}}}, errdef.ErrInvalid, "no expr"},
		{"dashboard not json", map[string]string{"d.json": "{"}, manifest.Spec{Dashboards: []manifest.FileSource{{Src: "d.json"}}}, errdef.ErrInvalid, "invalid JSON"},
		{"dashboard without title", map[string]string{"d.json": `{"uid": "x"}`}, manifest.Spec{Dashboards: []manifest.FileSource{{Src: "d.json"}}}, errdef.ErrInvalid, "no title"},
		{"dashboard uid twice", map[string]string{"d/1.json": `{"uid": "x", "title": "a"}`, "d/2.json": `{"uid": "x", "title": "b"}`}, manifest.Spec{Dashboards: []manifest.FileSource{{Src: "d"}}}, errdef.ErrInvalid, `uid "x"`},
		{"missing file", nil, manifest.Spec{Files: []manifest.FileSource{{Src: "nope"}}}, errdef.ErrNotFound, `"nope"`},
		{"two sources, one path", map[string]string{"a/v.yaml": "a", "b/v.yaml": "b"}, manifest.Spec{Files: []manifest.FileSource{{Src: "a/v.yaml"}, {Src: "b/v.yaml"}}}, errdef.ErrInvalid, "files/v.yaml"},
		{"dest escapes", map[string]string{"v.yaml": "a"}, manifest.Spec{Files: []manifest.FileSource{{Src: "v.yaml", Dest: "../../etc/x"}}}, errdef.ErrInvalid, "not safe"},
		// Names one file system takes for one: the kit.yaml field and both
		// source files are named, not entries[N].
		{"case twins in a folder", map[string]string{"d/Values.yaml": "a", "d/values.yaml": "b"}, manifest.Spec{Files: []manifest.FileSource{{Src: "d"}}}, errdef.ErrInvalid, `spec /files/0: kit path "files/d/values.yaml"`},
		{"NFC and NFD twins", map[string]string{"d/caf\u00e9": "a", "d/cafe\u0301": "b"}, manifest.Spec{Files: []manifest.FileSource{{Src: "d"}}}, errdef.ErrInvalid, "spec /files/0"},
		{"case twins across sources", map[string]string{"a/V.yaml": "a", "b/v.yaml": "b"}, manifest.Spec{Files: []manifest.FileSource{{Src: "a/V.yaml"}, {Src: "b/v.yaml"}}}, errdef.ErrInvalid, "spec /files/0"},
		{"file where another source has a folder", map[string]string{"a/x": "a", "b/x/y": "b"}, manifest.Spec{Files: []manifest.FileSource{{Src: "a/x"}, {Src: "b/x"}}}, errdef.ErrInvalid, `spec /files/0: kit path "files/x" is a file`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			kittest.Files(t, src, c.files)
			spec := c.spec
			spec.Name, spec.Version, spec.CreatedAt = "x", "1.0.0", &kittest.Created
			_, err := kit.Build(context.Background(), &spec, kit.BuildOptions{Dir: src, OutDir: t.TempDir()})
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.err, c.text)
			}
		})
	}
}

// TestSymlinks: a source's symbolic links are refused by default (naming
// the kit.yaml field and the link), followed or skipped when the source says
// so; a kit never holds a link.
func TestSymlinks(t *testing.T) {
	src := t.TempDir()
	kittest.Files(t, src, map[string]string{"files/a": "a", "target/t.txt": "target", "loop/l/x": "x"})
	os.Symlink("../target/t.txt", filepath.Join(src, "files/link"))
	os.Symlink("../target", filepath.Join(src, "files/dir"))
	os.Symlink("..", filepath.Join(src, "loop/l/up"))
	build := func(fs manifest.FileSource) (*kit.BuildResult, error) {
		spec := &manifest.Spec{Name: "x", Version: "1.0.0", CreatedAt: &kittest.Created, Files: []manifest.FileSource{fs}}
		return kit.Build(context.Background(), spec, kit.BuildOptions{Dir: src, OutDir: t.TempDir()})
	}
	paths := func(res *kit.BuildResult) []string {
		var out []string
		for _, e := range res.Manifest.Entries {
			out = append(out, e.Path+"="+strconv.FormatInt(e.Size, 10))
		}
		return out
	}

	_, err := build(manifest.FileSource{Src: "files"})
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "spec /files/0/src") || !strings.Contains(err.Error(), filepath.Join(src, "files/dir")) {
		t.Fatalf("refuse (default): got %v", err)
	}
	res, err := build(manifest.FileSource{Src: "files", Symlinks: manifest.SymlinksSkip})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(res), " "); got != "files/files/a=1" {
		t.Fatalf("skip: %s", got)
	}
	res, err = build(manifest.FileSource{Src: "files", Symlinks: manifest.SymlinksFollow})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(res), " "); got != "files/files/a=1 files/files/dir/t.txt=6 files/files/link=6" {
		t.Fatalf("follow: %s", got)
	}
	_, err = build(manifest.FileSource{Src: "loop", Symlinks: manifest.SymlinksFollow})
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "symlink loop") {
		t.Fatalf("follow a loop: got %v", err)
	}
	// The choice is part of kit.yaml.
	if _, err := manifest.ParseSpec("kit.yaml", []byte("name: x\nversion: 1.0.0\nfiles:\n  - src: d\n    symlinks: sometimes\n")); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "symlinks") {
		t.Fatalf("bad symlinks choice: %v", err)
	}
}
