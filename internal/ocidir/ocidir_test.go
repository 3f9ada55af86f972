package ocidir_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocidir"
	"github.com/offkit/offkit/manifest"
)

func entry(p string, b []byte) manifest.Entry {
	s := sha256.Sum256(b)
	return manifest.Entry{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
}

func TestWriter(t *testing.T) {
	blob, shared := []byte("a layer"), []byte("a layer the store has")
	bh, sh := entry("", blob).SHA256, entry("", shared).SHA256
	dir := t.TempDir()
	w, err := ocidir.New(dir, ocidir.Options{Have: func(h string) bool { return h == sh }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for p, b := range map[string][]byte{
		"images/oci-layout":         []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"images/blobs/sha256/" + bh: blob,
		"images/blobs/sha256/" + sh: shared,
	} {
		if err := w.Write(entry(p, b), strings.NewReader(string(b))); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", bh)); err != nil || string(got) != string(blob) {
		t.Errorf("blob: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", sh)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a blob the store has was written: %v", err)
	}
	if len(w.Blobs()) != 1 || w.Shared() != 1 {
		t.Errorf("Blobs %v, Shared %d", w.Blobs(), w.Shared())
	}
	for _, p := range []string{
		"images/blobs/sha256/" + strings.Repeat("0", 64), // not its digest
		"images/blobs/sha256/../../x",
		"images/other",
		"files/x",
	} {
		if err := w.Write(entry(p, blob), strings.NewReader(string(blob))); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", p, err)
		}
	}
	// A blob is never replaced.
	if err := w.Write(entry("images/blobs/sha256/"+bh, blob), strings.NewReader(string(blob))); err == nil {
		t.Error("a blob was written twice")
	}
}
