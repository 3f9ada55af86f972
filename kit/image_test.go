package kit_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// imageSpec pushes two images (of layers larger than a frame) to a registry
// on loopback and returns a spec with them and a file. Once *corrupt holds
// a digest, the registry flips a byte of that blob.
func imageSpec(t *testing.T) (*manifest.Spec, string, *atomic.Pointer[string], []string) {
	t.Helper()
	var corrupt atomic.Pointer[string]
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := corrupt.Load()
		if bad == nil || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+*bad) {
			reg.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		b[len(b)-1] ^= 1
		w.WriteHeader(rec.Code)
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	var layers []string
	spec := &manifest.Spec{Name: "img", Version: "1.0.0", CreatedAt: &kittest.Created,
		Compression: &manifest.SpecCompress{FrameSize: 256 << 10},
		Files:       []manifest.FileSource{{Src: "v.yaml"}}}
	for _, repo := range []string{"one", "two"} {
		img, err := random.Image(700<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/stellaops/" + repo + ":1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			d, _ := l.Digest()
			layers = append(layers, d.String())
		}
		spec.Images = append(spec.Images, manifest.ImageSource{Ref: ref.String()})
	}
	src := t.TempDir()
	kittest.Files(t, src, map[string]string{"v.yaml": "replicas: 2\n"})
	return spec, src, &corrupt, layers
}

// contents decompresses a kit and returns its entries.
func contents(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name], err = io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestImageKitStreamsTheLayout checks that the images streamed into a kit
// are exactly the layout images.Collect writes, and that the kit's bytes do
// not depend on the number of compression goroutines.
func TestImageKitStreamsTheLayout(t *testing.T) {
	spec, src, _, _ := imageSpec(t)
	key := kittest.NewKey(t)
	var kits [][]byte
	var last *kit.BuildResult
	for _, conc := range []int{1, 2, 5} {
		res, err := kit.Build(context.Background(), spec, kit.BuildOptions{Dir: src, OutDir: t.TempDir(), Key: key.Private, Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(res.Path)
		kits = append(kits, b)
		last = res
	}
	if !bytes.Equal(kits[0], kits[1]) || !bytes.Equal(kits[0], kits[2]) {
		t.Fatal("image kit bytes depend on the number of compression goroutines")
	}
	layout := t.TempDir()
	if _, err := images.Collect(context.Background(), spec.Images, layout, images.Options{}); err != nil {
		t.Fatal(err)
	}
	got := contents(t, last.Path)
	n := 0
	err := filepath.WalkDir(layout, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(layout, p)
		want, err := os.ReadFile(p)
		if !bytes.Equal(got["images/"+filepath.ToSlash(rel)], want) {
			t.Errorf("images/%s differs from the collected layout", rel)
		}
		n++
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var inKit int
	for _, e := range last.Manifest.Entries {
		if strings.HasPrefix(e.Path, "images/") {
			inKit++
		}
	}
	if inKit != n {
		t.Errorf("kit has %d image entries, the layout %d files", inKit, n)
	}
}

func TestImageBlobMismatchLeavesNoKit(t *testing.T) {
	spec, src, corrupt, layers := imageSpec(t)
	bad := layers[len(layers)-1]
	corrupt.Store(&bad)
	out := t.TempDir()
	_, err := kit.Build(context.Background(), spec, kit.BuildOptions{Dir: src, OutDir: out})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want %v naming %s", err, errdef.ErrDigestMismatch, bad)
	}
	left, _ := os.ReadDir(out)
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}
