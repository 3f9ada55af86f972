package kit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hasher gives each file's size and digest in the order the files were
// added, whatever order its goroutines finish in, and reports the error of
// the first file that fails.
func TestHasherOrderAndFirstError(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range 200 {
		name := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		// Sizes across the read buffer, so that some files take several reads.
		data := []byte(strings.Repeat(fmt.Sprint(i), i*(hashBuffer/300)+i))
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	h := startHasher()
	for _, f := range files {
		h.add(f)
	}
	res, err := h.wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files", len(res), len(files))
	}
	for i, f := range files {
		data, _ := os.ReadFile(f)
		sum := sha256.Sum256(data)
		if res[i].size != int64(len(data)) || res[i].sum != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: got %d bytes %s, want %d bytes %x", f, res[i].size, res[i].sum, len(data), sum)
		}
	}

	// Two missing files among good ones: the first one added is named,
	// however many times the race is run.
	for range 20 {
		h := startHasher()
		for i, f := range files[:50] {
			switch i {
			case 30:
				h.add(filepath.Join(dir, "missing-first"))
			case 31:
				h.add(filepath.Join(dir, "missing-second"))
			}
			h.add(f)
		}
		_, err := h.wait()
		if err == nil || !strings.Contains(err.Error(), "missing-first") {
			t.Fatalf("error %v, want the one of missing-first", err)
		}
	}
}

// stop ends a hasher that still has files queued, without hashing them
// all, and may be called after wait.
func TestHasherStop(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHasher()
	for range 500 {
		h.add(name)
	}
	h.stop()
	h.stop()
	h = startHasher()
	h.add(name)
	if _, err := h.wait(); err != nil {
		t.Fatal(err)
	}
	h.stop()
}
