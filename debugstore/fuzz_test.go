package debugstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// The fuzz targets run their seed corpus (testdata/fuzz/<Target>, written
// by OFFKIT_WRITE_SEEDS=1 go test -run TestSeeds ./debugstore) in every
// `go test`; `go test -fuzz FuzzReadBuildID ./debugstore` explores further.

var lowerHex = regexp.MustCompile(`^([0-9a-f]{2})+$`)

// checkID fails unless id is well formed.
func checkID(t *testing.T, id BuildID) {
	t.Helper()
	if id.GNU != "" && (!lowerHex.MatchString(id.GNU) || len(id.GNU) > 2*MaxBuildIDBytes) {
		t.Fatalf("GNU build id %q", id.GNU)
	}
	if id.TextSHA256 != "" && (id.GNU != "" || !regexp.MustCompile(`^text-sha256:[0-9a-f]{64}$`).MatchString(id.TextSHA256)) {
		t.Fatalf("fallback id %q with GNU %q", id.TextSHA256, id.GNU)
	}
	if id.Go != "" && !goIDOK(id.Go) {
		t.Fatalf("Go build id %q", id.Go)
	}
}

// FuzzReadBuildID walks the ELF header, both header tables and the notes:
// no panic, only invalid-input errors (the reader never fails), and ids
// well formed.
func FuzzReadBuildID(f *testing.F) {
	for _, s := range elfSeeds() {
		f.Add(s.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ReadBuildID(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("%v: not an invalid-input error", err)
			}
			return
		}
		checkID(t, id)
	})
}

// FuzzNotes parses one note region of the given alignment and byte order.
func FuzzNotes(f *testing.F) {
	for _, s := range noteSeeds() {
		f.Add(s.b, s.align, s.big)
	}
	f.Fuzz(func(t *testing.T, b []byte, align uint64, big bool) {
		var bo binary.ByteOrder = binary.LittleEndian
		if big {
			bo = binary.BigEndian
		}
		fl := &file{r: bytes.NewReader(b), size: uint64(len(b)), class: 64, bo: bo}
		notes, err := fl.readNotes(region{name: "fuzz", size: uint64(len(b)), align: align})
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("%v: not an invalid-input error", err)
			}
			return
		}
		for _, n := range notes {
			if len(n.desc) == 0 || n.at >= uint64(len(b)) || len(n.desc) > MaxGoBuildIDBytes {
				t.Fatalf("note %+v in %d bytes", n, len(b))
			}
		}
	})
}

type elfSeed struct {
	name string
	b    []byte
}

// elfSeeds are whole files: good ones of each class and byte order and
// every file of TestReadBuildIDHostile and TestReadBuildIDOdd.
func elfSeeds() []elfSeed {
	var seeds []elfSeed
	for _, class := range []int{32, 64} {
		for _, big := range []bool{false, true} {
			c := craft{class: class, big: big, segment: true, sections: true, text: []byte("text"),
				notes: []craftNote{goNote("a/b/c/d"), gnuNote(seq(20))}}
			seeds = append(seeds, elfSeed{fmt.Sprintf("good-elf%d-big-%v", class, big), c.bytes()})
		}
	}
	for _, h := range hostile {
		seeds = append(seeds, elfSeed{strings.ReplaceAll(h.name, " ", "-"), h.c.bytes()})
	}
	for _, o := range odd {
		name := strings.NewReplacer(" ", "-", ",", "").Replace(o.name)
		seeds = append(seeds, elfSeed{name, o.c.bytes()})
	}
	return seeds
}

type noteSeed struct {
	name  string
	b     []byte
	align uint64
	big   bool
}

// noteSeeds are note regions: good ones at both alignments, truncated
// notes, lengths that overflow, misaligned namesz and descsz.
func noteSeeds() []noteSeed {
	good := []craftNote{{name: "ABCD\x00", typ: 1, desc: []byte{1, 2, 3}}, goNote("x/y"), gnuNote(seq(20))}
	full := encodeNotes(binary.LittleEndian, 4, good)
	return []noteSeed{
		{"good-align4", full, 4, false},
		{"good-align8-big", encodeNotes(binary.BigEndian, 8, good), 8, true},
		{"truncated-header", full[:8], 4, false},
		{"truncated-desc", full[:len(full)-4], 4, false},
		{"namesz-overflows", encodeNotes(binary.LittleEndian, 4, []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), namesz: u32(0xffffffff)}}), 4, false},
		{"descsz-overflows", encodeNotes(binary.BigEndian, 8, []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), descsz: u32(0xfffffff9)}}), 8, true},
		{"namesz-misaligned", encodeNotes(binary.LittleEndian, 4, []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), namesz: u32(5)}}), 4, false},
		{"descsz-misaligned", encodeNotes(binary.LittleEndian, 8, []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), descsz: u32(19)}, gnuNote(seq(8))}), 8, false},
		{"alignment-16", full, 16, false},
	}
}

// corpusFile is the seed corpus file format of go test -fuzz.
func corpusFile(values ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		}
	}
	return b.Bytes()
}

// The committed seed corpus and testdata/example.elf are what the crafting
// code makes (OFFKIT_WRITE_SEEDS=1 rewrites them).
func TestSeeds(t *testing.T) {
	want := map[string][]byte{filepath.Join("testdata", "example.elf"): exampleELF()}
	for _, s := range elfSeeds() {
		want[filepath.Join("testdata", "fuzz", "FuzzReadBuildID", s.name)] = corpusFile(s.b)
	}
	for _, s := range noteSeeds() {
		want[filepath.Join("testdata", "fuzz", "FuzzNotes", s.name)] = corpusFile(s.b, s.align, s.big)
	}
	for _, s := range sectionSeeds() {
		want[filepath.Join("testdata", "fuzz", "FuzzFindSection", s.name)] = corpusFile(s.b, s.section)
	}
	write := os.Getenv("OFFKIT_WRITE_SEEDS") == "1"
	for path, b := range want {
		if write {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is not what the test crafts (%v): run OFFKIT_WRITE_SEEDS=1 go test -run TestSeeds ./debugstore", path, err)
		}
	}
}

// exampleELF is testdata/example.elf: a 64-bit little-endian file with a Go
// and a GNU build id note.
func exampleELF() []byte {
	desc := []byte{0x3f, 0x1c, 0x9a, 0x04, 0x55, 0xe2, 0x17, 0xb8, 0x6d, 0x20, 0x41, 0x8e, 0xc0, 0x5b, 0x93, 0x7a, 0x12, 0xf4, 0x68, 0x0d}
	return craft{class: 64, segment: true, sections: true, text: []byte("\x55\x48\x89\xe5\x5d\xc3"),
		notes: []craftNote{goNote("Kq3Nv0bJ/aZ1x/Hq9/mW2e"), gnuNote(desc)}}.bytes()
}
