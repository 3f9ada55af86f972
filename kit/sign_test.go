package kit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// TestSignHeadOverSeveralFrames: a head larger than a frame (a manifest of
// 2,000 entries, 64 KiB frames) takes several frames; Sign rewrites them
// all through the writer Build uses (it used to assume one head frame).
func TestSignHeadOverSeveralFrames(t *testing.T) {
	key := kittest.NewKey(t)
	src := t.TempDir()
	files := map[string]string{}
	for i := range 2000 {
		files[fmt.Sprintf("files/many/f%04d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	kittest.Files(t, src, files)
	build := func(k *kittest.Key) string {
		spec := &manifest.Spec{
			Name: "many", Version: "1.0.0", CreatedAt: &kittest.Created,
			Compression: &manifest.SpecCompress{FrameSize: 64 << 10},
			Files:       []manifest.FileSource{{Src: "files/many", Dest: "many"}},
		}
		opts := kit.BuildOptions{Dir: src, OutDir: t.TempDir(), Builder: manifest.Builder{Name: "offkit", Version: "test"}}
		if k != nil {
			opts.Key = k.Private
		}
		res, err := kit.Build(context.Background(), spec, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.Path
	}
	signed, unsigned := build(key), build(nil)
	f, err := os.Open(signed)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	frames, err := seekable.ReadSeekTable(f, st.Size())
	f.Close()
	if err != nil || frames[0].DecompressedSize < 64<<10 || len(frames) < 4 {
		t.Fatalf("the head should fill more than one frame: %v, %d frames, first %d bytes", err, len(frames), frames[0].DecompressedSize)
	}
	if _, err := kit.Sign(unsigned, key.Private); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", ".sig"} {
		x, _ := os.ReadFile(signed + suffix)
		y, _ := os.ReadFile(unsigned + suffix)
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Fatalf("offkit sign gave a different %q than building with the key", filepath.Base(unsigned)+suffix)
		}
	}
}
