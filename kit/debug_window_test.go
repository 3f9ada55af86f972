package kit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// Build reads a debug file's build id as verify will (its first and last
// MiB): a file whose note lies between them is refused at build, naming
// the source, rather than built into a kit that no site would install;
// a large file with its note at the head and tables at the end builds and
// verifies.
func TestBuildDebugWindow(t *testing.T) {
	key := kittest.NewKey(t)
	id := strings.Repeat("5e", 20)
	good := kittest.DebugELF(t, id, 3<<20)
	mid := bytes.Clone(good)
	const at = 2 << 20
	copy(mid[at:], good[120:120+36])
	binary.LittleEndian.PutUint64(mid[64+8:], at) // the note's p_offset
	binary.LittleEndian.PutUint64(mid[40:], 0)    // no section table
	binary.LittleEndian.PutUint16(mid[60:], 0)

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.debug"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "mid.debug"), mid, 0o644)
	res, err := buildDebug(t, key, dir, manifest.DebugSource{Src: "good.debug", Kind: manifest.DebugKindFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.File(context.Background(), res.Path, verify.Options{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	_, err = buildDebug(t, key, dir, manifest.DebugSource{Src: "mid.debug", Kind: manifest.DebugKindFile})
	if errdef.ExitCode(err) != 11 || !strings.Contains(err.Error(), "spec /debug/0") || !strings.Contains(err.Error(), "mid.debug") || !strings.Contains(err.Error(), "what verify reads") {
		t.Errorf("a note in the middle: %v", err)
	}
}
