package elfgen_test

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/elfgen"
)

// The generated file is ELF as Go's debug/elf, offkit and readelf (when
// installed) read it: the build id asked for, the filler section of the
// size asked for, the size Size says.
func TestWrite(t *testing.T) {
	id, _ := hex.DecodeString("0123456789abcdef0123456789abcdef01234567")
	for _, filler := range []int64{0, 1, 3 << 20} {
		o := elfgen.Options{BuildID: id, Filler: filler, Seed: 7}
		b := elfgen.Bytes(o)
		if int64(len(b)) != elfgen.Size(o) {
			t.Errorf("filler %d: %d bytes, Size says %d", filler, len(b), elfgen.Size(o))
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("filler %d: debug/elf: %v", filler, err)
		}
		if s := f.Section(".debug_filler"); (s != nil) != (filler > 0) || s != nil && int64(s.Size) != filler {
			t.Errorf("filler %d: section %+v", filler, s)
		}
		got, err := debugstore.ReadBuildID(bytes.NewReader(b), int64(len(b)))
		if err != nil || got.GNU != hex.EncodeToString(id) {
			t.Errorf("filler %d: ReadBuildID %+v, %v", filler, got, err)
		}
		w := debugstore.NewWindow(int64(len(b)))
		w.Write(b)
		if got, err := debugstore.ReadGNUBuildID(w, int64(len(b))); err != nil || got.GNU != hex.EncodeToString(id) {
			t.Errorf("filler %d: ReadGNUBuildID from a window %+v, %v", filler, got, err)
		}
		if readelf, err := exec.LookPath("readelf"); err == nil {
			p := filepath.Join(t.TempDir(), "x.debug")
			os.WriteFile(p, b, 0o644)
			out, err := exec.Command(readelf, "-n", p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Build ID: "+hex.EncodeToString(id)) {
				t.Errorf("filler %d: readelf -n: %v\n%s", filler, err, out)
			}
		}
	}
}
