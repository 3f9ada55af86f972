package kit_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// withDebugInfo is an ELF file of build id id whose filler section is
// named .debug_info (same-length rename in the section name table): an
// unstripped binary, as the scan tells one.
func withDebugInfo(t *testing.T, id string, filler int64) []byte {
	b := kittest.DebugELF(t, id, filler)
	old := []byte(".debug_filler\x00")
	if bytes.Count(b, old) != 1 {
		t.Fatal("elfgen's section name table changed")
	}
	return bytes.Replace(b, old, []byte(".debug_info\x00\x00\x00"), 1)
}

func tarOf(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	tw.Close()
	return buf.Bytes()
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A debug source of kind image scans the layers of an image the kit
// collects (gzip, zstd and plain tar layers, streamed), keeps the ELF
// files left after later layers' whiteouts that carry .debug_info as
// <aa>/<rest>.debug (not those removed by a whiteout or an opaque folder),
// and the listed paths as executables, each recorded
// with the image manifest's digest and its path in the image; the kit
// verifies. A listed path the image lacks is exit 1, a src that is no
// image of the spec exit 11.
func TestDebugImageSource(t *testing.T) {
	idApp, idStripped, idGone, idTool := kittest.IDOf(1), kittest.IDOf(2), kittest.IDOf(3), kittest.IDOf(4)
	app, stripped, gone, tool := withDebugInfo(t, idApp, 5000), kittest.DebugELF(t, idStripped, 0), withDebugInfo(t, idGone, 700), withDebugInfo(t, idTool, 3000)
	l1, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, map[string][]byte{
			"usr/bin/app": app, "./usr/bin/stripped": stripped, "usr/lib/gone.so": gone, "etc/readme": []byte("not ELF"),
			"/../../opt/hidden/x.so": withDebugInfo(t, kittest.IDOf(5), 100), // a name climbing out stays in the image (/opt/hidden)
		}))), nil
	}) // gzip
	if err != nil {
		t.Fatal(err)
	}
	l2, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, map[string][]byte{"usr/lib/.wh.gone.so": nil, "opt/hidden/.wh..wh..opq": nil, "opt/tool": tool}))), nil
	}, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	l3 := static.NewLayer(tarOf(t, map[string][]byte{"usr/share/doc": []byte("plain")}), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, l1, l2, l3)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	const ref = "registry.example/app:1.0"
	key := kittest.NewKey(t)
	build := func(ds manifest.DebugSource) (*kit.BuildResult, error) {
		spec := &manifest.Spec{Name: "app", Version: "1.0.0", CreatedAt: &kittest.Created,
			Images: []manifest.ImageSource{{Ref: ref, Layout: "image"}}, Debug: []manifest.DebugSource{ds}}
		return kit.Build(context.Background(), spec, kit.BuildOptions{Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"}})
	}
	res, err := build(manifest.DebugSource{Kind: manifest.DebugKindImage, Src: ref, Component: "app", Paths: []string{"/usr/bin/stripped"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []manifest.Debug{
		{BuildID: idApp, Path: "debug/.build-id/" + idApp[:2] + "/" + idApp[2:] + ".debug", Arch: "amd64", Image: digest.String(), ImagePath: "/usr/bin/app", Component: "app"},
		{BuildID: idStripped, Path: "debug/.build-id/" + idStripped[:2] + "/" + idStripped[2:], Arch: "amd64", Image: digest.String(), ImagePath: "/usr/bin/stripped", Component: "app"},
		{BuildID: idTool, Path: "debug/.build-id/" + idTool[:2] + "/" + idTool[2:] + ".debug", Arch: "amd64", Image: digest.String(), ImagePath: "/opt/tool", Component: "app"},
	}
	sort.Slice(want, func(i, j int) bool { return want[i].BuildID < want[j].BuildID })
	got := res.Manifest.Debug
	if len(got) != len(want) {
		t.Fatalf("debug[] %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("debug[%d] %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if _, err := verify.File(context.Background(), res.Path, verify.Options{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created}); err != nil {
		t.Fatalf("verify: %v", err)
	}

	_, err = build(manifest.DebugSource{Kind: manifest.DebugKindImage, Src: ref, Paths: []string{"/usr/bin/nope", "etc/readme"}})
	if errdef.ExitCode(err) != errdef.ExitNotFound || !strings.Contains(err.Error(), "/usr/bin/nope") || !strings.Contains(err.Error(), "/etc/readme") {
		t.Errorf("paths the image lacks as ELF: %v", err)
	}
	_, err = build(manifest.DebugSource{Kind: manifest.DebugKindImage, Src: "registry.example/other:1"})
	if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "spec /debug/0/src") {
		t.Errorf("src that is no image of the spec: %v", err)
	}
}

// A layer that names a path twice leaves the last entry there, as a
// container runtime does: an ELF file with debug information followed by
// a plain file of the same name is not scanned; the other way round, it
// is.
func TestDebugImageSourceSameNameTwice(t *testing.T) {
	idGone, idKept := kittest.IDOf(6), kittest.IDOf(7)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		body []byte
	}{
		{"usr/bin/replaced", withDebugInfo(t, idGone, 300)},
		{"usr/bin/replaced", []byte("a script now")},
		{"usr/bin/kept", []byte("a script first")},
		{"usr/bin/kept", withDebugInfo(t, idKept, 300)},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	const ref = "registry.example/dup:1.0"
	spec := &manifest.Spec{Name: "dup", Version: "1.0.0", CreatedAt: &kittest.Created,
		Images: []manifest.ImageSource{{Ref: ref, Layout: "image"}}, Debug: []manifest.DebugSource{{Kind: manifest.DebugKindImage, Src: ref}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{Dir: dir, OutDir: t.TempDir(), Builder: manifest.Builder{Name: "offkit", Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Manifest.Debug; len(got) != 1 || got[0].BuildID != idKept || got[0].ImagePath != "/usr/bin/kept" {
		t.Errorf("debug[] %+v, want only %s at /usr/bin/kept", got, idKept)
	}
}
