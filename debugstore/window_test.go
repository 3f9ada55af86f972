package debugstore_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/elfgen"
	"github.com/offkit/offkit/internal/errdef"
)

// A Window written in chunks of any size gives back exactly the file's
// first WindowHead and last WindowTail bytes, and refuses the others.
func TestWindow(t *testing.T) {
	const H, T = debugstore.WindowHead, debugstore.WindowTail
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, H - 1, H, H + 1, H + T - 1, H + T, H + T + 1, 3*H + 12345} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		w := debugstore.NewWindow(int64(size))
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(300<<10))
			if n, err := w.Write(rest[:k]); n != k || err != nil {
				t.Fatalf("size %d: Write %d: %d, %v", size, k, n, err)
			}
			rest = rest[k:]
		}
		if !w.Complete() {
			t.Fatalf("size %d: not complete", size)
		}
		if _, err := w.Write([]byte{1}); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("size %d: a byte past the end: %v", size, err)
		}
		kept := func(o int) bool { return o < H || o >= size-T }
		for i := 0; i < 200 && size > 0; i++ {
			off := rng.IntN(size)
			n := min(size-off, 1+rng.IntN(5000))
			buf := make([]byte, n)
			got, err := w.ReadAt(buf, int64(off))
			if kept(off) && kept(off+n-1) && (off+n-1 < H || off >= size-T || size <= H+T) {
				if got != n || err != nil || !bytes.Equal(buf, data[off:off+n]) {
					t.Fatalf("size %d: ReadAt(%d, %d) = %d, %v; bytes equal %v", size, off, n, got, err, bytes.Equal(buf[:got], data[off:off+got]))
				}
			} else if !kept(off) && !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("size %d: ReadAt(%d, %d) outside the window: %d, %v", size, off, n, got, err)
			}
		}
	}
}

// ReadGNUBuildID from a Window finds what ReadBuildID finds in the whole
// file when the notes lie in the head and the section table in the tail,
// and refuses (errdef.ErrInvalid) a file whose note lies in the middle,
// which ReadBuildID of the whole file reads.
func TestWindowBuildID(t *testing.T) {
	id := bytes.Repeat([]byte{0xab}, 20)
	b := elfgen.Bytes(elfgen.Options{BuildID: id, Filler: 5 << 20})
	fromWindow := func(b []byte) (debugstore.BuildID, error) {
		w := debugstore.NewWindow(int64(len(b)))
		w.Write(b)
		return debugstore.ReadGNUBuildID(w, int64(len(b)))
	}
	if got, err := fromWindow(b); err != nil || got.GNU != hex.EncodeToString(id) {
		t.Fatalf("window: %+v, %v", got, err)
	}
	// Move the note to the middle of the filler and drop the section table.
	mid := bytes.Clone(b)
	const at = 3 << 20
	copy(mid[at:], b[120:120+36])
	binary.LittleEndian.PutUint64(mid[64+8:], at) // p_offset
	binary.LittleEndian.PutUint64(mid[40:], 0)    // e_shoff
	binary.LittleEndian.PutUint16(mid[60:], 0)    // e_shnum
	whole, err := debugstore.ReadBuildID(bytes.NewReader(mid), int64(len(mid)))
	if err != nil || whole.GNU != hex.EncodeToString(id) {
		t.Fatalf("whole file: %+v, %v", whole, err)
	}
	if got, err := fromWindow(mid); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "outside the first") {
		t.Errorf("a note in the middle: %+v, %v", got, err)
	}
}

func TestStoredID(t *testing.T) {
	id := strings.Repeat("ab", 20)
	for name, want := range map[string]string{
		"debug/.build-id/ab/" + id[2:] + ".debug":      id,
		"debug/.build-id/ab/" + id[2:]:                 id,
		"debug/x/.build-id/ab/" + id[2:] + ".debug":    id,
		"debug/.build-id/AB/" + id[2:] + ".debug":      "",
		"debug/.build-id/ab/" + id[2:] + ".debug/x":    "",
		"debug/.build-id/abc/" + id[3:] + ".debug":     "",
		"debug/build-id/ab/" + id[2:] + ".debug":       "",
		"debug/.build-id/ab/" + id[2:8] + ".debug":     "",
		"debug/.build-id/ab/" + id[2:] + ".debug.orig": "",
		"debug/debug-manifest.json":                    "",
	} {
		got, ok := debugstore.StoredID(name)
		if got != want || ok != (want != "") {
			t.Errorf("StoredID(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	b := elfgen.Bytes(elfgen.Options{BuildID: bytes.Repeat([]byte{0xab}, 20)})
	other := "debug/.build-id/cd/" + strings.Repeat("cd", 19) + ".debug"
	if _, err := debugstore.CheckStoredName(other, bytes.NewReader(b), int64(len(b))); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), id) {
		t.Errorf("a file named for another id: %v", err)
	}
	if ok, err := debugstore.CheckStoredName("debug/.build-id/ab/"+id[2:]+".debug", bytes.NewReader(b), int64(len(b))); !ok || err != nil {
		t.Errorf("its own name: %v, %v", ok, err)
	}
}
