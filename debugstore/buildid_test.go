package debugstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

func readCrafted(t *testing.T, b []byte) (BuildID, error) {
	t.Helper()
	return ReadBuildID(bytes.NewReader(b), int64(len(b)))
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0xa0 + i)
	}
	return b
}

// Both classes, both byte orders, the note found through a PT_NOTE segment,
// a SHT_NOTE section or both, ids of 8, 16 and 20 bytes.
func TestReadBuildIDClassesAndOrders(t *testing.T) {
	for _, class := range []int{32, 64} {
		for _, big := range []bool{false, true} {
			for _, where := range []string{"segment", "section", "both"} {
				for _, n := range []int{8, 16, 20} {
					name := fmt.Sprintf("ELF%d/big=%v/%s/%d", class, big, where, n)
					t.Run(name, func(t *testing.T) {
						desc := seq(n)
						c := craft{class: class, big: big, notes: []craftNote{gnuNote(desc)}, text: []byte("text"),
							segment: where != "section", sections: where != "segment"}
						id, err := readCrafted(t, c.bytes())
						if err != nil {
							t.Fatal(err)
						}
						want := hex.EncodeToString(desc)
						if id.GNU != want || id.String() != want || id.TextSHA256 != "" {
							t.Errorf("got %+v, want GNU %s", id, want)
						}
						order := "little"
						if big {
							order = "big"
						}
						if id.Class != class || id.ByteOrder != order {
							t.Errorf("class %d order %s, want %d %s", id.Class, id.ByteOrder, class, order)
						}
					})
				}
			}
		}
	}
}

// Other notes before the build id are skipped by their padded sizes, with
// 4-byte alignment and with the 8-byte alignment of a 64-bit PT_NOTE whose
// p_align is 8 (where a 5-byte name pads to 8, not 4).
func TestReadBuildIDNoteAlignment(t *testing.T) {
	desc := seq(20)
	others := []craftNote{
		{name: "ABCD\x00", typ: 1, desc: []byte{1, 2, 3}},
		{name: "GNU\x00", typ: 5, desc: seq(12)}, // NT_GNU_PROPERTY_TYPE_0
		{name: "GNU\x00", typ: 1, desc: seq(16)}, // NT_GNU_ABI_TAG
	}
	for _, align := range []uint64{4, 8} {
		for _, class := range []int{32, 64} {
			for _, big := range []bool{false, true} {
				t.Run(fmt.Sprintf("align%d/ELF%d/big=%v", align, class, big), func(t *testing.T) {
					c := craft{class: class, big: big, align: align, segment: true, notes: append(others, gnuNote(desc))}
					id, err := readCrafted(t, c.bytes())
					if err != nil {
						t.Fatal(err)
					}
					if id.GNU != hex.EncodeToString(desc) {
						t.Errorf("GNU %q, want %x", id.GNU, desc)
					}
				})
			}
		}
	}
	// The same 8-aligned notes declared 4-aligned are misread, and the
	// misreading is an error, not a wrong id.
	c := craft{class: 64, align: 8, segment: true, notes: append(others, gnuNote(desc)),
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.phoff+48:], 4) }}
	if id, err := readCrafted(t, c.bytes()); err == nil && id.GNU == hex.EncodeToString(desc) {
		t.Errorf("8-aligned notes read as 4-aligned gave the id: %+v", id)
	}
}

// A Go binary's Go build id is reported alongside its GNU build id, from
// the Go note or from the string at the start of the text.
func TestReadBuildIDGo(t *testing.T) {
	const goID = "F7s7lBTSm6swEBcXpDGk/0mGydjivWH9WbL-tWzik/Rxv7F87Lop11eWAbsvFd/za4c1eurnI6kICDhJAET"
	c := craft{class: 64, segment: true, sections: true, notes: []craftNote{goNote(goID), gnuNote(seq(20))}, text: []byte("code")}
	id, err := readCrafted(t, c.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if id.Go != goID || id.GNU != hex.EncodeToString(seq(20)) {
		t.Errorf("got %+v", id)
	}
	text := append([]byte("\xff Go build ID: \""+goID+"\"\n \xff"), make([]byte, 100)...)
	c = craft{class: 32, big: true, sections: true, text: text}
	id, err = readCrafted(t, c.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if id.Go != goID || id.GNU != "" || !strings.HasPrefix(id.TextSHA256, TextSHA256Prefix) {
		t.Errorf("from the text: got %+v", id)
	}
}

// A file without a build id note is named by the SHA-256 of its .text, with
// a prefix that no build id has.
func TestReadBuildIDNoNote(t *testing.T) {
	text := []byte("\x55\x48\x89\xe5\xc3 some code")
	sum := sha256.Sum256(text)
	for _, class := range []int{32, 64} {
		for _, big := range []bool{false, true} {
			c := craft{class: class, big: big, sections: true, text: text,
				notes: []craftNote{{name: "GNU\x00", typ: 1, desc: seq(16)}}}
			id, err := readCrafted(t, c.bytes())
			if err != nil {
				t.Fatal(err)
			}
			want := "text-sha256:" + hex.EncodeToString(sum[:])
			if id.GNU != "" || id.TextSHA256 != want || id.String() != want {
				t.Errorf("ELF%d big=%v: got %+v, want %s", class, big, id, want)
			}
		}
	}
	// No note and no sections: no id at all, and no error.
	c := craft{class: 64}
	id, err := readCrafted(t, c.bytes())
	if err != nil || id.String() != "" {
		t.Errorf("bare header: %+v, %v", id, err)
	}
}

// hostile are ELF files whose lengths lie; each is refused as invalid with
// a message naming what is at fault.
var hostile = []struct {
	name string
	c    craft
	want string
}{
	{"truncated note header", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.phoff+32:], 8) }}, "not enough for a note header"},
	{"namesz overflows", craft{class: 64, segment: true, notes: []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), namesz: u32(0xffffffff)}}},
		"run past the end of the notes"},
	{"descsz overflows", craft{class: 32, segment: true, notes: []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), descsz: u32(0xfffffffc)}}},
		"run past the end of the notes"},
	{"descsz misaligned past the end", craft{class: 64, big: true, sections: true, notes: []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), descsz: u32(21)}}},
		"run past the end of the notes"},
	{"namesz misaligned", craft{class: 32, big: true, segment: true, notes: []craftNote{{name: "GNU\x00", typ: 3, desc: seq(20), namesz: u32(7)}}},
		"run past the end of the notes"},
	{"build id too long", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(MaxBuildIDBytes + 4))}}, "want 1 to 64"},
	{"empty build id", craft{class: 64, segment: true, notes: []craftNote{gnuNote(nil)}}, "want 1 to 64"},
	{"two build ids", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20)), gnuNote(seq(16))}}, "GNU build id"},
	{"note alignment 16", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.phoff+48:], 16) }}, "note alignment 16"},
	{"note segment past the end", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.phoff+8:], 1<<62) }}, "PT_NOTE segment 0"},
	{"note segment offset wraps", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.phoff+8:], ^uint64(0)-3) }}, "past the end of the file"},
	{"note section of a terabyte", craft{class: 64, sections: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.shoff+64+32:], 1<<40) }}, "over the limit"},
	{"huge section count", craft{class: 64, sections: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) {
			// Extended numbering: e_shnum 0, the count in section 0's sh_size.
			l.bo.PutUint16(b[l.shnumOff:], 0)
			l.bo.PutUint64(b[l.shoff+32:], 1<<40)
		}}, "sections, over the limit"},
	{"section table past the end", craft{class: 32, sections: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint16(b[l.shnumOff:], 0xfff0) }}, "section header table"},
	{"section table offset past the end", craft{class: 64, big: true, sections: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.shoffOff:], ^uint64(0)-100) }}, "past the end of the file"},
	{"program header table past the end", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint16(b[56:], 0xfffe) }}, "program header table"},
	{"section name past the name table", craft{class: 64, sections: true, notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint32(b[l.shoff+64:], 1<<30) }}, "name offset"},
	{"bad class", craft{class: 64, patch: func(l *layout, b []byte) { b[4] = 9 }}, "unknown class"},
	{"bad byte order", craft{class: 64, patch: func(l *layout, b []byte) { b[5] = 0 }}, "unknown byte order"},
	{"tiny section entries", craft{class: 64, sections: true, patch: func(l *layout, b []byte) { l.bo.PutUint16(b[58:], 8) }}, "e_shentsize 8"},
}

func TestReadBuildIDHostile(t *testing.T) {
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.c.bytes()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			id, err := readCrafted(t, b)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("got %+v, %v; want an invalid-input error", id, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			// Nothing was allocated from a declared length.
			if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
				t.Errorf("allocated %d bytes", n)
			}
		})
	}
}

// odd are files that are read without error although they look strange:
// compressed sections declaring a terabyte (never inflated: a compressed
// note section is skipped, a compressed .text gives no fallback id) and
// extended section numbering.
var odd = []struct {
	name string
	c    craft
	gnu  bool // the GNU id seq(20) is found
	text bool // a fallback id is given
}{
	{"compressed note section of a terabyte", craft{class: 64, sections: true, noteFlags: shfCompressed, text: []byte("t"), notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) { l.bo.PutUint64(b[l.shoff+64+32:], 1<<40) }}, false, true},
	{"compressed note section, note segment", craft{class: 32, big: true, segment: true, sections: true, noteFlags: shfCompressed, text: []byte("t"), notes: []craftNote{gnuNote(seq(20))}}, true, false},
	{"compressed text of a terabyte", craft{class: 64, big: true, sections: true, text: []byte("t"),
		patch: func(l *layout, b []byte) {
			l.bo.PutUint64(b[l.shoff+128+8:], 6|shfCompressed)
			l.bo.PutUint64(b[l.shoff+128+32:], 1<<40)
		}}, false, false},
	{"extended section numbering", craft{class: 64, sections: true, text: []byte("t"), notes: []craftNote{gnuNote(seq(20))},
		patch: func(l *layout, b []byte) {
			l.bo.PutUint16(b[l.shnumOff:], 0)        // e_shnum: in section 0's sh_size
			l.bo.PutUint16(b[l.shnumOff+2:], 0xffff) // e_shstrndx: in section 0's sh_link
			l.bo.PutUint64(b[l.shoff+32:], 4)
			l.bo.PutUint32(b[l.shoff+40:], 3)
		}}, true, false},
	{"extended numbering, 32-bit", craft{class: 32, sections: true, text: []byte("t"),
		patch: func(l *layout, b []byte) {
			l.bo.PutUint16(b[l.shnumOff:], 0)
			l.bo.PutUint16(b[l.shnumOff+2:], 0xffff)
			l.bo.PutUint32(b[l.shoff+20:], 4)
			l.bo.PutUint32(b[l.shoff+24:], 3)
		}}, false, true},
}

func TestReadBuildIDOdd(t *testing.T) {
	for _, tc := range odd {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			id, err := readCrafted(t, tc.c.bytes())
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if gnu := id.GNU == hex.EncodeToString(seq(20)); gnu != tc.gnu || (id.GNU != "" && !gnu) {
				t.Errorf("GNU %q, want the id: %v", id.GNU, tc.gnu)
			}
			if text := strings.HasPrefix(id.TextSHA256, TextSHA256Prefix); text != tc.text {
				t.Errorf("fallback %q, want one: %v", id.TextSHA256, tc.text)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
				t.Errorf("allocated %d bytes", n)
			}
		})
	}
}

func TestReadBuildIDNotELF(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x7fEL"), []byte("#!/bin/sh\necho hello, world\n"), make([]byte, 100)} {
		_, err := readCrafted(t, b)
		if !errors.Is(err, ErrNotELF) || !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%q: %v, want ErrNotELF", b, err)
		}
	}
	// Cut anywhere, a valid file is refused or read, never misread.
	full := craft{class: 64, segment: true, sections: true, notes: []craftNote{gnuNote(seq(20))}, text: []byte("text")}.bytes()
	for n := range len(full) {
		id, err := readCrafted(t, full[:n])
		if err == nil && id.GNU != "" && id.GNU != hex.EncodeToString(seq(20)) {
			t.Errorf("cut at %d: misread %s", n, id.GNU)
		}
		if err != nil && !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
}

// errReader fails every read past off.
type errReader struct {
	r   io.ReaderAt
	off int64
}

var errDisk = errors.New("input/output error")

func (e errReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.off {
		return 0, errDisk
	}
	return e.r.ReadAt(p, off)
}

// A read that fails for another reason than the end of the file is
// ErrIO (exit 12), not invalid input.
func TestReadBuildIDReadError(t *testing.T) {
	b := craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))}}.bytes()
	_, err := ReadBuildID(errReader{bytes.NewReader(b), 80}, int64(len(b)))
	if !errors.Is(err, errdef.ErrIO) || !errors.Is(err, errDisk) || errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("got %v, want ErrIO wrapping the read error", err)
	}
}
