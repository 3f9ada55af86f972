package plainfile

import (
	"os"
	"path/filepath"
	"testing"
)

// The cost of opening a small file, checking it is a regular file and
// learning its size, then closing it: os.Open and Stat, and OpenRegular
// (whose FileInfo comes with the open).
func BenchmarkOpenChecked(b *testing.B) {
	name := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(name, []byte("offkit"), 0o644); err != nil {
		b.Fatal(err)
	}
	check := func(f *os.File, err error) {
		if err != nil {
			b.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			b.Fatal(err)
		}
		f.Close()
	}
	b.Run("os.Open+Stat", func(b *testing.B) {
		for b.Loop() {
			check(os.Open(name))
		}
	})
	b.Run("OpenRegular", func(b *testing.B) {
		for b.Loop() {
			f, fi, err := OpenRegular(name)
			if err != nil || fi.Size() != 6 {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
