package kit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// BenchmarkBuildManyFiles builds a kit of many small files both ways:
// hashing the files first (each read twice) and content first (each read
// once, then the packed frames copied after the head).
func BenchmarkBuildManyFiles(b *testing.B) {
	src := b.TempDir()
	var total int64
	for i := range 4000 {
		dir := filepath.Join(src, "tree", fmt.Sprintf("d%02d", i%40))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		data := make([]byte, 1000+(i*7919)%30000)
		for j := range data {
			data[j] = byte((j*i)>>7) | 'a'
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.txt", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	spec := &manifest.Spec{Name: "bench", Version: "1.0.0", CreatedAt: &kittest.Created,
		Files: []manifest.FileSource{{Src: "tree"}}}
	for _, c := range []struct {
		name  string
		first bool
	}{{"hash-first", false}, {"content-first", true}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(total)
			out := b.TempDir()
			for b.Loop() {
				opts := kit.BuildOptions{Dir: src, OutDir: out}
				kit.SetContentFirst(&opts, c.first)
				if _, err := kit.Build(context.Background(), spec, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
