package debugstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// textHeader patches section 2 (.text) of a crafted file: its type, flags,
// offset and size (64-bit files).
func textHeader(typ uint32, flags, off, size uint64) func(l *layout, b []byte) {
	return func(l *layout, b []byte) {
		e := b[l.shoff+2*64:]
		l.bo.PutUint32(e[4:], typ)
		l.bo.PutUint64(e[8:], flags)
		if off != 0 {
			l.bo.PutUint64(e[24:], off)
		}
		l.bo.PutUint64(e[32:], size)
	}
}

// sectionCases are crafted files and what FindSection says of .text.
var sectionCases = []struct {
	name  string
	c     craft
	found bool
	size  int64
	err   string // an invalid-input error naming this
}{
	{"good", craft{class: 64, sections: true, text: []byte("0123456789")}, true, 10, ""},
	{"good-elf32-big", craft{class: 32, big: true, sections: true, text: []byte("0123456789")}, true, 10, ""},
	{"nobits", craft{class: 64, sections: true, text: []byte("0123"), patch: textHeader(8, 6, 0, 1<<40)}, false, 0, ""},
	{"compressed-terabyte", craft{class: 64, sections: true, text: []byte("0123456789abcdefghijklmnopqrstuvwxyz"),
		patch: textHeader(1, 6|shfCompressed, 0, 1<<40)}, false, 0, "section 2 (.text): 1099511627776 bytes"},
	{"compressed", craft{class: 64, sections: true, text: []byte("0123456789abcdefghijklmnopqrstuvwxyz"),
		patch: textHeader(1, 6|shfCompressed, 0, 36)}, true, 36, ""},
	{"past-the-end", craft{class: 64, sections: true, text: []byte("0123"), patch: textHeader(1, 6, 1<<62, 8)}, false, 0, "past the end of the file"},
	{"size-overflows", craft{class: 64, sections: true, text: []byte("0123"), patch: textHeader(1, 6, 16, ^uint64(0)-8)}, false, 0, "past the end of the file"},
	{"no-sections", craft{class: 64, segment: true, notes: []craftNote{gnuNote(seq(20))}}, false, 0, ""},
	{"table-past-the-end", craft{class: 64, sections: true, text: []byte("0123"), patch: func(l *layout, b []byte) {
		l.bo.PutUint64(b[l.shoffOff:], uint64(len(b)-64))
	}}, false, 0, "section header table"},
	{"huge-section-count", craft{class: 64, sections: true, text: []byte("0123"), patch: func(l *layout, b []byte) {
		l.bo.PutUint16(b[l.shnumOff:], 0xfff0)
	}}, false, 0, "section header table"},
	{"name-past-strtab", craft{class: 64, sections: true, text: []byte("0123"), patch: func(l *layout, b []byte) {
		l.bo.PutUint32(b[l.shoff+2*64:], 1<<30)
	}}, false, 0, ""},
}

// FindSection places a section's bytes inside the file or refuses: a
// NOBITS section has none, a compressed one is placed raw (never inflated,
// so one declaring a terabyte is past the end), every offset and size is
// checked against the file.
func TestFindSection(t *testing.T) {
	for _, tc := range sectionCases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.c.bytes()
			s, found, err := FindSection(bytes.NewReader(b), int64(len(b)), ".text")
			if tc.err != "" {
				if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want an invalid-input error naming %q", err, tc.err)
				}
				return
			}
			if err != nil || found != tc.found || s.Size != tc.size {
				t.Fatalf("%+v, %v, %v; want found %v, %d bytes", s, found, err, tc.found, tc.size)
			}
			if found && !bytes.Equal(b[s.Offset:s.Offset+s.Size], tc.c.text) {
				t.Errorf("bytes %q, want %q", b[s.Offset:s.Offset+s.Size], tc.c.text)
			}
		})
	}
	// Names are compared whole: a prefix, a longer name, a name that is
	// not there, an empty or overlong one are not found.
	b := craft{class: 64, sections: true, text: []byte("x")}.bytes()
	for _, name := range []string{".tex", ".text2", ".debug_info", "", strings.Repeat("a", MaxSectionNameBytes+1), ".text\x00"} {
		if _, found, err := FindSection(bytes.NewReader(b), int64(len(b)), name); found || err != nil {
			t.Errorf("%q: found %v, %v", name, found, err)
		}
	}
	if s, found, err := FindSection(bytes.NewReader(b), int64(len(b)), ".shstrtab"); !found || err != nil || s.Index != 3 {
		t.Errorf(".shstrtab: %+v %v %v", s, found, err)
	}
}

// FuzzFindSection: no panic, only invalid-input errors, and a section
// found lies inside the file.
func FuzzFindSection(f *testing.F) {
	for _, s := range sectionSeeds() {
		f.Add(s.b, s.section)
	}
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		s, found, err := FindSection(bytes.NewReader(b), int64(len(b)), name)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("%v: not an invalid-input error", err)
			}
			return
		}
		if found && (s.Offset < 0 || s.Size < 0 || s.Offset > int64(len(b)) || s.Size > int64(len(b))-s.Offset) {
			t.Fatalf("section %+v in %d bytes", s, len(b))
		}
	})
}

type sectionSeed struct {
	name    string
	b       []byte
	section string
}

// sectionSeeds are the files of TestFindSection and the ELF seeds, looked
// up by .text and by .note.gnu.build-id.
func sectionSeeds() []sectionSeed {
	var seeds []sectionSeed
	for _, tc := range sectionCases {
		seeds = append(seeds, sectionSeed{tc.name, tc.c.bytes(), ".text"})
	}
	for _, s := range elfSeeds() {
		seeds = append(seeds, sectionSeed{fmt.Sprintf("note-%s", s.name), s.b, ".note.gnu.build-id"})
	}
	return seeds
}
