package copybuf

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestCopyFileToHash is the copy build makes of each file into its hash:
// the bytes arrive whole, and the copy allocates no 32 KiB buffer.
func TestCopyFileToHash(t *testing.T) {
	data := bytes.Repeat([]byte("offkit "), 20000)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	copyOnce := func() {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		n, err := Copy(h, f)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Copy = %d, %v; want %d", n, err, len(data))
		}
		if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
			t.Fatal("digest differs")
		}
	}
	copyOnce()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for range 100 {
		copyOnce()
	}
	runtime.ReadMemStats(&ms1)
	// io.Copy would allocate 100 × 32 KiB here.
	if got := ms1.TotalAlloc - ms0.TotalAlloc; got > 100*Size/4 && !raceEnabled {
		t.Errorf("100 copies allocated %d bytes", got)
	}
}
