// Command mkimage writes the demo zastava-observer image of the
// zastava-runtime example kit as an OCI image layout, with no network:
//
//	go run ./examples/zastava-runtime/mkimage -o examples/zastava-runtime/_image
//
// -version V (default Version) makes the image of release V instead: tagged
// V and labelled with version V, so its configs, manifests and index differ
// while its layers stay the same (scripts/walkthrough.sh builds 1.4.2 and
// 1.4.3 this way).
//
// The image is a multi-arch index (linux/amd64, linux/arm64) of two images
// of one layer each. A layer holds the files of -src (by default
// examples/zastava-runtime/image: a config file and a README, no binaries)
// and /etc/zastava/platform, naming its platform. Every time in the tar and
// the config is the kit's createdAt, so two runs write the same bytes. The
// layout's index.json has one entry, annotated
// org.opencontainers.image.ref.name = Repository:V (Ref by default).
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The reference the image has in the example kit.
const (
	Repository = "registry.stella-ops.org/stellaops/zastava-observer"
	Version    = "1.4.2"
	Ref        = Repository + ":" + Version
)

// created is the createdAt of examples/zastava-runtime/kit.yaml.
var created = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

var platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

func main() {
	out := flag.String("o", "", "OCI image layout folder to write (created; its index.json is replaced)")
	src := flag.String("src", "examples/zastava-runtime/image", "folder of the files the image holds")
	version := flag.String("version", Version, "the image's tag and version label")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 || *version == "" || strings.ContainsAny(*version, ":/@ ") {
		fmt.Fprintln(os.Stderr, "usage: mkimage -o DIR [-src DIR] [-version V]")
		os.Exit(2)
	}
	d, err := WriteVersion(*out, os.DirFS(*src), *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s@%s\n", Repository, *version, d)
}

// Write writes the image index built from files into the OCI image layout
// folder dir, as Ref, and returns the index digest.
func Write(dir string, files fs.FS) (v1.Hash, error) {
	return WriteVersion(dir, files, Version)
}

// WriteVersion is Write for release version: the image is tagged version
// and labelled with it.
func WriteVersion(dir string, files fs.FS, version string) (v1.Hash, error) {
	idx, err := IndexVersion(files, version)
	if err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: Repository + ":" + version})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// Index builds the multi-arch image index of Version from files.
func Index(files fs.FS) (v1.ImageIndex, error) {
	return IndexVersion(files, Version)
}

// IndexVersion builds the multi-arch image index of version from files.
func IndexVersion(files fs.FS, version string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := image(files, p, version)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

func image(files fs.FS, p v1.Platform, version string) (v1.Image, error) {
	tb, err := layerTar(files, p)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tb)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "offkit examples/zastava-runtime/mkimage",
			Comment:   "observer configuration and README",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = v1.Config{
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Entrypoint: []string{"/usr/bin/zastava-observer"},
		Cmd:        []string{"--config", "/etc/zastava/observer.yaml"},
		User:       "65532:65532",
		Labels: map[string]string{
			ocispec.AnnotationTitle:   "zastava-observer",
			ocispec.AnnotationVersion: version,
			ocispec.AnnotationVendor:  "offkit demo (not a StellaOps build)",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// layerTar writes a tar of files plus etc/zastava/platform: folders 0755,
// files 0644, owned by root, every time set to created, in lexical order.
func layerTar(files fs.FS, p v1.Platform) ([]byte, error) {
	type file struct {
		name string
		data []byte
	}
	var fl []file
	dirs := map[string]bool{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == "." || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", name)
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		fl = append(fl, file{name, b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(fl) == 0 {
		return nil, fmt.Errorf("no files in the image source folder")
	}
	fl = append(fl, file{"etc/zastava/platform", []byte(p.OS + "/" + p.Architecture + "\n")})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(name string, typ byte, mode, size int64) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: created}
	}
	var addDir func(string) error
	addDir = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(hdr(d+"/", tar.TypeDir, 0o755, 0))
	}
	slices.SortFunc(fl, func(a, b file) int { return strings.Compare(a.name, b.name) })
	for _, f := range fl {
		if err := addDir(path.Dir(f.name)); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr(f.name, tar.TypeReg, 0o644, int64(len(f.data)))); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
