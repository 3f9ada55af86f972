package limit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

func TestReadAllAtTheLimit(t *testing.T) {
	if b, err := ReadAll(strings.NewReader("12345"), "doc", 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	_, err := ReadAll(strings.NewReader("123456"), "doc", 5)
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "doc: over 5 bytes") {
		t.Fatalf("limit+1: %v", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("abc"), 0o644)
	if b, err := ReadFile(p, 3); err != nil || string(b) != "abc" {
		t.Fatalf("%q, %v", b, err)
	}
	if _, err := ReadFile(p, 2); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("over: %v", err)
	}
	_, err := ReadFile(filepath.Join(dir, "missing"), 3)
	if !errors.Is(err, errdef.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := ReadFileIn(r, "f", 3); err != nil || string(b) != "abc" {
		t.Fatalf("in root: %q, %v", b, err)
	}
	if _, err := ReadFileIn(r, "../f", 3); err == nil {
		t.Fatal("escaped the root")
	}
}
