package debugstore

import (
	"encoding/binary"
)

// Crafted ELF files for the tests: built byte by byte with encoding/binary,
// so that every class and byte order, and every broken length, can be made.

// craftNote is one note; name is written as is (with its NULs) and namesz
// is len(name) unless namesz is set.
type craftNote struct {
	name   string
	typ    uint32
	desc   []byte
	namesz *uint32
	descsz *uint32
}

// craft describes an ELF file: a header, an optional PT_NOTE segment and an
// optional section table (null, the notes as .note.gnu.build-id, .text,
// .shstrtab).
type craft struct {
	class    int  // 32 or 64
	big      bool // big-endian
	notes    []craftNote
	align    uint64 // note alignment: 4 (default) or 8
	segment  bool   // a PT_NOTE segment over the notes
	sections bool   // a section table
	text     []byte // .text contents
	// noteFlags is OR'ed into the note section's flags (SHF_COMPRESSED).
	noteFlags uint64
	// patch edits the finished file (broken lengths).
	patch func(l *layout, b []byte)
}

// layout is where craft put things, for patch.
type layout struct {
	bo                  binary.ByteOrder
	phoff, shoff        int
	notesOff, notesSize int
	shnumOff            int // offset of e_shnum in the header
	shoffOff            int // offset of e_shoff in the header
}

func u32(v uint32) *uint32 { return &v }

// order is the file's byte order.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (c craft) order() order {
	if c.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// encodeNotes lays out notes with the given alignment.
func encodeNotes(bo binary.AppendByteOrder, align uint64, notes []craftNote) []byte {
	if align < 4 {
		align = 4
	}
	var b []byte
	pad := func() {
		for uint64(len(b))%align != 0 {
			b = append(b, 0)
		}
	}
	for _, n := range notes {
		namesz, descsz := uint32(len(n.name)), uint32(len(n.desc))
		if n.namesz != nil {
			namesz = *n.namesz
		}
		if n.descsz != nil {
			descsz = *n.descsz
		}
		b = bo.AppendUint32(b, namesz)
		b = bo.AppendUint32(b, descsz)
		b = bo.AppendUint32(b, n.typ)
		b = append(b, n.name...)
		pad()
		b = append(b, n.desc...)
		pad()
	}
	return b
}

func (c craft) bytes() []byte {
	bo := c.order()
	align := c.align
	if align == 0 {
		align = 4
	}
	is64 := c.class == 64
	ehsize, phentsize, shentsize := 52, 32, 40
	if is64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	l := &layout{bo: bo}
	b := make([]byte, ehsize)
	copy(b, "\x7fELF")
	b[4] = 1
	if is64 {
		b[4] = 2
	}
	b[5] = 1
	if c.big {
		b[5] = 2
	}
	b[6] = 1                 // EV_CURRENT
	bo.PutUint16(b[16:], 3)  // ET_DYN
	bo.PutUint16(b[18:], 62) // EM_X86_64
	bo.PutUint32(b[20:], 1)
	phnum := 0
	if c.segment {
		phnum = 1
	}
	l.phoff = len(b)
	b = append(b, make([]byte, phnum*phentsize)...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	notes := encodeNotes(bo, align, c.notes)
	l.notesOff, l.notesSize = len(b), len(notes)
	b = append(b, notes...)
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	textOff := len(b)
	b = append(b, c.text...)
	strtab := []byte("\x00.note.gnu.build-id\x00.text\x00.shstrtab\x00")
	strOff := len(b)
	b = append(b, strtab...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	if c.segment {
		p := b[l.phoff:]
		bo.PutUint32(p, 4) // PT_NOTE
		if is64 {
			bo.PutUint32(p[4:], 4) // PF_R
			bo.PutUint64(p[8:], uint64(l.notesOff))
			bo.PutUint64(p[32:], uint64(len(notes)))
			bo.PutUint64(p[40:], uint64(len(notes)))
			bo.PutUint64(p[48:], align)
		} else {
			bo.PutUint32(p[4:], uint32(l.notesOff))
			bo.PutUint32(p[16:], uint32(len(notes)))
			bo.PutUint32(p[20:], uint32(len(notes)))
			bo.PutUint32(p[28:], uint32(align))
		}
	}
	shnum := 0
	if c.sections {
		l.shoff = len(b)
		shnum = 4
		sh := func(name, typ uint32, flags, off, size, addralign uint64) {
			e := make([]byte, shentsize)
			bo.PutUint32(e[0:], name)
			bo.PutUint32(e[4:], typ)
			if is64 {
				bo.PutUint64(e[8:], flags)
				bo.PutUint64(e[24:], off)
				bo.PutUint64(e[32:], size)
				bo.PutUint64(e[48:], addralign)
			} else {
				bo.PutUint32(e[8:], uint32(flags))
				bo.PutUint32(e[16:], uint32(off))
				bo.PutUint32(e[20:], uint32(size))
				bo.PutUint32(e[32:], uint32(addralign))
			}
			b = append(b, e...)
		}
		sh(0, 0, 0, 0, 0, 0)
		sh(1, 7, 2|c.noteFlags, uint64(l.notesOff), uint64(len(notes)), align) // SHT_NOTE, SHF_ALLOC
		sh(20, 1, 2|4, uint64(textOff), uint64(len(c.text)), 16)               // SHT_PROGBITS, AX
		sh(26, 3, 0, uint64(strOff), uint64(len(strtab)), 1)                   // SHT_STRTAB
	}
	if is64 {
		if phnum > 0 {
			bo.PutUint64(b[32:], uint64(l.phoff))
		}
		bo.PutUint64(b[40:], uint64(l.shoff))
		bo.PutUint16(b[52:], uint16(ehsize))
		bo.PutUint16(b[54:], uint16(phentsize))
		bo.PutUint16(b[56:], uint16(phnum))
		bo.PutUint16(b[58:], uint16(shentsize))
		bo.PutUint16(b[60:], uint16(shnum))
		bo.PutUint16(b[62:], uint16(max(shnum-1, 0)))
		l.shnumOff, l.shoffOff = 60, 40
	} else {
		if phnum > 0 {
			bo.PutUint32(b[28:], uint32(l.phoff))
		}
		bo.PutUint32(b[32:], uint32(l.shoff))
		bo.PutUint16(b[40:], uint16(ehsize))
		bo.PutUint16(b[42:], uint16(phentsize))
		bo.PutUint16(b[44:], uint16(phnum))
		bo.PutUint16(b[46:], uint16(shentsize))
		bo.PutUint16(b[48:], uint16(shnum))
		bo.PutUint16(b[50:], uint16(max(shnum-1, 0)))
		l.shnumOff, l.shoffOff = 48, 32
	}
	if c.patch != nil {
		c.patch(l, b)
	}
	return b
}

// gnuNote is an NT_GNU_BUILD_ID note of desc.
func gnuNote(desc []byte) craftNote { return craftNote{name: "GNU\x00", typ: 3, desc: desc} }

// goNote is a Go build id note of id.
func goNote(id string) craftNote { return craftNote{name: "Go\x00\x00", typ: 4, desc: []byte(id)} }
