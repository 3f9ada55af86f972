package kit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// A key given through LoadKey, decrypted beside the build, signs the kit
// as the same key given at once does; its error ends the build and leaves
// no kit. Both ways Build takes: beside listing the files (single-file
// sources) and before it (a folder source).
func TestBuildLoadKey(t *testing.T) {
	key := kittest.NewKey(t)
	src := t.TempDir()
	kittest.Files(t, src, map[string]string{"files/a.txt": strings.Repeat("a", 5000), "files/b/c.txt": "c"})
	for name, files := range map[string][]manifest.FileSource{
		"single files": {{Src: "files/a.txt"}, {Src: "files/b/c.txt"}},
		"a folder":     {{Src: "files"}},
	} {
		t.Run(name, func(t *testing.T) {
			spec := &manifest.Spec{Name: "k", Version: "1.0.0", CreatedAt: &kittest.Created, Files: files}
			build := func(opts kit.BuildOptions) (*kit.BuildResult, error) {
				opts.Dir, opts.OutDir = src, t.TempDir()
				return kit.Build(context.Background(), spec, opts)
			}
			want, err := build(kit.BuildOptions{Key: key.Private})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			got, err := build(kit.BuildOptions{LoadKey: func() (*sign.PrivateKey, error) { calls++; return key.Private, nil }})
			if err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{"", ".sig"} {
				x, _ := os.ReadFile(want.Path + suffix)
				y, _ := os.ReadFile(got.Path + suffix)
				if calls != 1 || len(x) == 0 || !bytes.Equal(x, y) {
					t.Fatalf("K%s with LoadKey (%d calls) differs from K%s with Key", suffix, calls, suffix)
				}
			}

			bad := errors.New("key k.key: wrong password")
			out := t.TempDir()
			_, err = kit.Build(context.Background(), spec, kit.BuildOptions{Dir: src, OutDir: out,
				LoadKey: func() (*sign.PrivateKey, error) { return nil, bad }})
			if !errors.Is(err, bad) {
				t.Fatalf("error %v, want the key's", err)
			}
			if left, _ := filepath.Glob(filepath.Join(out, "*")); len(left) != 0 {
				t.Fatalf("a refused build left %v", left)
			}
		})
	}
}
