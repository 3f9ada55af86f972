package images_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/manifest"
)

// A named pipe where a layout's index.json or blob, an archive or a verify
// key should be is refused (exit 11, naming it): the build does not wait for a
// writer.
func TestSourceNamedPipe(t *testing.T) {
	base := t.TempDir()
	a := randomImage(t, "linux", "amd64")
	writeLayout(t, filepath.Join(base, "index"), map[string]v1.Image{"1.0": a})
	writeLayout(t, filepath.Join(base, "blob"), map[string]v1.Image{"1.0": a})
	ls, _ := a.Layers()
	lh, _ := ls[0].Digest()
	pipes := map[string]string{
		"index":   filepath.Join(base, "index", "index.json"),
		"blob":    filepath.Join(base, "blob", "blobs", "sha256", lh.Hex),
		"archive": filepath.Join(base, "a.tar"),
		"key":     filepath.Join(base, "cosign.pub"),
	}
	for _, p := range pipes {
		fifotest.Replace(t, p)
	}
	for name, src := range map[string]manifest.ImageSource{
		"index":   {Ref: "registry.example/stellaops/a:1.0", Layout: "index"},
		"blob":    {Ref: "registry.example/stellaops/a:1.0", Layout: "blob"},
		"archive": {Ref: "registry.example/stellaops/a:1.0", Archive: "a.tar"},
		"key":     {Ref: "registry.example/stellaops/a:1.0", Layout: "index", Verify: &manifest.ImageVerify{Key: "cosign.pub"}},
	} {
		done := fifotest.Guard(t, pipes[name])
		_, err := images.Collect(context.Background(), []manifest.ImageSource{src}, t.TempDir(), images.Options{BaseDir: base})
		done()
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), pipes[name]) || !strings.Contains(err.Error(), "a named pipe, not a regular file") {
			t.Errorf("%s that is a named pipe: %v", name, err)
		}
		if _, err := os.Lstat(pipes[name]); err != nil {
			t.Fatal(err)
		}
	}
}
