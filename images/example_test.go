package images_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/manifest"
)

// exampleLayout writes, in dir/image, an OCI layout holding one small
// image whose bytes never change.
func exampleLayout(dir string) error {
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("hello\n"), types.OCILayer))
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	p, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img)
}

// Resolve plans the files of the images/ folder of a kit; each blob is
// read from its source, and checked, only when it is opened.
func ExampleResolve() {
	dir, _ := os.MkdirTemp("", "offkit-example-")
	defer os.RemoveAll(dir)
	if err := exampleLayout(dir); err != nil {
		fmt.Println(err)
		return
	}
	srcs := []manifest.ImageSource{{Ref: "registry.example/stellaops/demo:1.0.0", Layout: "image"}}
	ctx := context.Background()
	p, err := images.Resolve(ctx, srcs, images.Options{BaseDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	for _, f := range p.Files {
		rc, err := f.Open(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		n, err := io.Copy(io.Discard, rc) // a tar writer, in the kit
		rc.Close()
		if err != nil {
			fmt.Println(err) // errdef.ErrDigestMismatch names the blob
			return
		}
		fmt.Println("images/"+f.Path, n)
	}
	// Output:
	// images/blobs/sha256/5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6
	// images/blobs/sha256/a554b8f018d2b4d54796c5836dff281c9fed0731b00feeb31a35a65ebb9f7bfb 233
	// images/blobs/sha256/c275c68472e22fdbcdcdfec9a3dd3f26e94b9b246da580ecd00433fdef2cdf41 399
	// images/index.json 408
	// images/oci-layout 30
}

// Collect writes the images as an OCI layout in a folder.
func ExampleCollect() {
	dir, _ := os.MkdirTemp("", "offkit-example-")
	defer os.RemoveAll(dir)
	if err := exampleLayout(dir); err != nil {
		fmt.Println(err)
		return
	}
	srcs := []manifest.ImageSource{{Ref: "registry.example/stellaops/demo:1.0.0", Layout: "image"}}
	imgs, err := images.Collect(context.Background(), srcs, filepath.Join(dir, "staging"), images.Options{BaseDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, img := range imgs {
		fmt.Println(img.Reference, img.Digest)
	}
	// Output:
	// registry.example/stellaops/demo:1.0.0 sha256:c275c68472e22fdbcdcdfec9a3dd3f26e94b9b246da580ecd00433fdef2cdf41
}
