package kit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// A build cancelled once its content is packed stops: content first, the
// copy of the packed frames after the head (as long as writing the kit
// again) is cancelled too, and neither the kit nor the scratch file is left
// in the output folder.
func TestContentFirstCopyStopsWhenCancelled(t *testing.T) {
	files := t.TempDir()
	kittest.Files(t, files, map[string]string{
		"files/a.txt": strings.Repeat("offkit\n", 1000),
		"files/b.txt": "b",
	})
	spec := &manifest.Spec{Name: "cancel", Version: "1.0.0", CreatedAt: &kittest.Created,
		Files: []manifest.FileSource{{Src: "files"}}}
	for _, first := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		out := t.TempDir()
		opts := kit.BuildOptions{Dir: files, OutDir: out, Key: kittest.NewKey(t).Private}
		kit.SetContentFirst(&opts, first)
		opts.Progress = func(done, total int64) {
			if done == total {
				cancel()
			}
		}
		_, err := kit.Build(ctx, spec, opts)
		cancel()
		if first && !errors.Is(err, context.Canceled) {
			t.Fatalf("content first: err = %v, want context.Canceled", err)
		}
		left, _ := filepath.Glob(filepath.Join(out, "*"))
		hidden, _ := filepath.Glob(filepath.Join(out, ".*"))
		if err != nil && len(left)+len(hidden) != 0 {
			t.Fatalf("content first %v: cancelled build left %v %v", first, left, hidden)
		}
	}
}
