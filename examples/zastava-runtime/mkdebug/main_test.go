package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/offkit/offkit/debugstore"
)

// The committed debug file is what mkdebug writes, and its build id is
// BuildID.
func TestCommittedFile(t *testing.T) {
	b, err := os.ReadFile("../debug/zastava-observer.debug")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Bytes()) {
		t.Errorf("debug/zastava-observer.debug differs from mkdebug's output: run go run ./examples/zastava-runtime/mkdebug")
	}
	id, err := debugstore.ReadBuildID(bytes.NewReader(b), int64(len(b)))
	if err != nil || id.GNU != BuildID {
		t.Errorf("build id %+v, %v; want %s", id, err, BuildID)
	}
}
