package kit

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// entry is one tar entry of a test layer: a regular file of body, or a
// folder when dir is set.
type entry struct {
	name, body string
	dir        bool
}

func elfBody(n int) string { return "\x7fELF" + strings.Repeat("x", n-4) }

func layerOf(t testing.TB, entries ...entry) *images.File {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &images.File{Data: buf.Bytes()}
}

// leftFiles lists the paths and sizes a tree leaves, and checks the
// scan's temporary folder holds exactly their copies, and s.spooled their
// bytes.
func leftFiles(t *testing.T, s *imageScan, tree *layerTree) string {
	t.Helper()
	var out []string
	var sum int64
	spools := map[string]bool{}
	for p, f := range tree.lower.files {
		out = append(out, fmt.Sprintf("%s:%d", p, f.size))
		sum += f.size
		spools[filepath.Base(f.spool)] = true
	}
	if len(tree.cur.files) != 0 {
		t.Errorf("files of a layer read left out of the tree: %v", tree.cur.files)
	}
	des, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !spools[de.Name()] {
			t.Errorf("%s left in the temporary folder", de.Name())
		}
	}
	if len(des) != len(spools) {
		t.Errorf("%d files in the temporary folder for %d left", len(des), len(spools))
	}
	if s.spooled != sum {
		t.Errorf("%d bytes counted as held, %d held", s.spooled, sum)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Layers apply as a container runtime applies them: a later entry
// replaces an earlier one at its path (in an earlier layer or earlier in
// the same layer), a whiteout or opaque folder removes what earlier
// layers had (never the files of its own layer), a file replaces a
// folder's content, a folder replaces a file. A file removed or replaced
// is removed from the temporary folder at once.
func TestImageScanLayers(t *testing.T) {
	s := &imageScan{ctx: context.Background(), tmp: t.TempDir()}
	tree := newLayerTree()
	steps := []struct {
		layer *images.File
		want  string
	}{
		{layerOf(t,
			entry{name: "usr/bin/a", body: elfBody(10)},
			entry{name: "usr/bin/b", body: elfBody(11)},
			entry{name: "usr/lib/x/deep/c.so", body: elfBody(12)},
			entry{name: "usr/lib/x/d.so", body: elfBody(13)},
			entry{name: "opt/e", body: elfBody(14)},
			entry{name: "etc/readme", body: "not ELF"},
			// The same name twice in one layer: the last one is the file.
			entry{name: "usr/bin/dup", body: elfBody(15)},
			entry{name: "usr/bin/dup", body: "not ELF any more"},
			entry{name: "usr/bin/dup2", body: elfBody(16)},
			entry{name: "usr/bin/dup2", body: elfBody(17)},
		), "opt/e:14 usr/bin/a:10 usr/bin/b:11 usr/bin/dup2:17 usr/lib/x/d.so:13 usr/lib/x/deep/c.so:12"},
		{layerOf(t,
			entry{name: "usr/bin/.wh.a"},           // removes a
			entry{name: "usr/lib/x", body: "file"}, // a file where a folder was
			entry{name: "opt/.wh..wh..opq"},        // opaque: opt/e goes
			entry{name: "opt/f", body: elfBody(18)},
			entry{name: "opt/.wh.f"},            // same layer: f stays
			entry{name: "usr/bin/b", dir: true}, // a folder where a file was
			entry{name: "srv/g", body: elfBody(19)},
		), "opt/f:18 srv/g:19 usr/bin/dup2:17"},
		{layerOf(t,
			entry{name: "./srv/g", body: elfBody(20)}, // replaces g
			entry{name: "/../../srv/h", body: elfBody(21)},
		), "opt/f:18 srv/g:20 srv/h:21 usr/bin/dup2:17"},
		{layerOf(t, entry{name: ".wh..wh..opq"}), ""}, // opaque root
	}
	for i, st := range steps {
		if err := s.layer(tree, st.layer); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if got := leftFiles(t, s, tree); got != st.want {
			t.Errorf("after layer %d: %q, want %q", i, got, st.want)
		}
	}
}

// The ELF files held in the temporary folder at once are bounded: those a
// later layer removed or replaced no longer count; one more byte over the
// bound is refused with exit 11 naming the image, the file and the limit.
func TestImageScanSpoolLimit(t *testing.T) {
	layers := []*images.File{
		layerOf(t, entry{name: "a", body: elfBody(100)}, entry{name: "b", body: elfBody(50)}),
		layerOf(t, entry{name: ".wh.a"}, entry{name: "b", body: elfBody(60)}, entry{name: "c", body: elfBody(90)}),
	}
	files := map[string]*images.File{}
	var m struct {
		SchemaVersion int                 `json:"schemaVersion"`
		Layers        []map[string]string `json:"layers"`
	}
	m.SchemaVersion = 2
	for i, l := range layers {
		hex := fmt.Sprintf("%064x", i+1)
		files["blobs/sha256/"+hex] = l
		m.Layers = append(m.Layers, map[string]string{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + hex})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := "sha256:" + strings.Repeat("f", 64)
	files["blobs/sha256/"+strings.Repeat("f", 64)] = &images.File{Data: mb}
	ds := manifest.DebugSource{Kind: manifest.DebugKindImage, Src: "registry.example/app:1.0"}
	scan := func(max int64) (*imageScan, error) {
		s := &imageScan{ctx: context.Background(), tmp: t.TempDir(), max: max}
		// The files are no real ELF files: none is kept, each is removed
		// once examined.
		err := s.addManifest(&debugStore{entry: map[string]debugOrigin{}}, ds, "spec /debug/0", md, files, map[string]bool{})
		return s, err
	}
	// At most 150 bytes at once: a and b (150), then b's 50 replaced by
	// 60 and a removed (60), then c (150).
	s, err := scan(150)
	if err != nil {
		t.Fatalf("within the limit: %v", err)
	}
	if des, _ := os.ReadDir(s.tmp); len(des) != 0 || s.spooled != 0 {
		t.Errorf("%d files (%d bytes counted) left in the temporary folder", len(des), s.spooled)
	}
	_, err = scan(149)
	if errdef.ExitCode(err) != errdef.ExitInvalid {
		t.Fatalf("over the limit: %v", err)
	}
	for _, want := range []string{"spec /debug/0", "image registry.example/app:1.0", "layer sha256:" + fmt.Sprintf("%064x", 1), "/b: 50 bytes more would hold 150 bytes", "over the limit of 149"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// At most 2 files at once (a and b, then b and c); 1 is too few.
	files2 := func(maxFiles int) (*imageScan, error) {
		s := &imageScan{ctx: context.Background(), tmp: t.TempDir(), maxFiles: maxFiles}
		err := s.addManifest(&debugStore{entry: map[string]debugOrigin{}}, ds, "spec /debug/0", md, files, map[string]bool{})
		return s, err
	}
	if s, err := files2(2); err != nil || s.held != 0 {
		t.Fatalf("within the file limit: %v (%d files counted)", err, s.held)
	}
	if _, err := files2(1); errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "/b: one more would hold over 1 ELF files") {
		t.Fatalf("over the file limit: %v", err)
	}
	if s := (&imageScan{}); s.limit() != MaxImageSpool || s.fileLimit() != MaxImageSpoolFiles {
		t.Errorf("default limit %d", s.limit())
	}
}

// BenchmarkImageScanWhiteouts applies a layer of n whiteouts over a tree
// of n ELF files (the timed part; the tree's layer is not): each removal
// finds the files under a folder through its index, without a pass over
// the whole tree.
func BenchmarkImageScanWhiteouts(b *testing.B) {
	const n = 20000
	var files, whiteouts []entry
	for i := range n {
		files = append(files, entry{name: fmt.Sprintf("usr/lib/%d/f%d.so", i%100, i), body: elfBody(4)})
		whiteouts = append(whiteouts, entry{name: fmt.Sprintf("usr/share/.wh.x%d", i)})
	}
	l1, l2 := layerOf(b, files...), layerOf(b, whiteouts...)
	tmp := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(tmp)
		os.Mkdir(tmp, 0o755)
		s := &imageScan{ctx: context.Background(), tmp: tmp}
		tree := newLayerTree()
		if err := s.layer(tree, l1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.layer(tree, l2); err != nil {
			b.Fatal(err)
		}
	}
}
