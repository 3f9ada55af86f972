package debugstore

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/errdef"
)

// The ELF header walk: the header, the program header table and the section
// header table, parsed with encoding/binary (debug/elf trusts section sizes
// and inflates compressed sections to the size they declare).

const (
	bigEndian = 2 // EI_DATA of ELFDATA2MSB

	ehdr32Size = 52
	ehdr64Size = 64
	phdr32Size = 32
	phdr64Size = 56
	shdr32Size = 40
	shdr64Size = 64
	// maxEntrySize bounds e_phentsize and e_shentsize.
	maxEntrySize = 1024

	pnXNum        = 0xffff // e_phnum: the count is section 0's sh_info
	shnXIndex     = 0xffff // e_shstrndx: the index is section 0's sh_link
	shfCompressed = 0x800
	shfExecInstr  = 0x4
)

// file is an ELF file being read.
type file struct {
	r       io.ReaderAt
	size    uint64
	class   int
	order   int
	bo      binary.ByteOrder
	machine elf.Machine
	typ     elf.Type

	phoff, shoff         uint64
	phentsize, shentsize uint64
	phnum, shnum         uint64
	shstrndx             uint64

	// text is the .text section, when the file has an uncompressed one.
	text struct {
		ok        bool
		off, size uint64
	}
}

// region is a note segment or section.
type region struct {
	name      string // "PT_NOTE segment 2", "section 5 (.note.gnu.build-id)"
	off, size uint64
	align     uint64
}

// section is one section header.
type section struct {
	name, typ  uint32
	flags      uint64
	off, size  uint64
	link, info uint32
	addralign  uint64
}

func (f *file) readHeader() error {
	var ident [elf.EI_NIDENT]byte
	if f.size < uint64(len(ident)) {
		return fmt.Errorf("%d bytes: %w", f.size, ErrNotELF)
	}
	if err := f.readAt(ident[:], 0, "ELF identification"); err != nil {
		return err
	}
	if string(ident[:4]) != elf.ELFMAG {
		return ErrNotELF
	}
	hsize := uint64(0)
	switch elf.Class(ident[elf.EI_CLASS]) {
	case elf.ELFCLASS32:
		f.class, hsize = 32, ehdr32Size
	case elf.ELFCLASS64:
		f.class, hsize = 64, ehdr64Size
	default:
		return fmt.Errorf("ELF header: unknown class %d: %w", ident[elf.EI_CLASS], errdef.ErrInvalid)
	}
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		f.order, f.bo = 1, binary.LittleEndian
	case elf.ELFDATA2MSB:
		f.order, f.bo = bigEndian, binary.BigEndian
	default:
		return fmt.Errorf("ELF header: unknown byte order %d: %w", ident[elf.EI_DATA], errdef.ErrInvalid)
	}
	var h [ehdr64Size]byte
	if err := f.readAt(h[:hsize], 0, "ELF header"); err != nil {
		return err
	}
	bo := f.bo
	f.typ = elf.Type(bo.Uint16(h[16:]))
	f.machine = elf.Machine(bo.Uint16(h[18:]))
	var tail []byte // e_phentsize … e_shstrndx
	if f.class == 32 {
		f.phoff, f.shoff = uint64(bo.Uint32(h[28:])), uint64(bo.Uint32(h[32:]))
		tail = h[42:52]
	} else {
		f.phoff, f.shoff = bo.Uint64(h[32:]), bo.Uint64(h[40:])
		tail = h[54:64]
	}
	f.phentsize, f.phnum = uint64(bo.Uint16(tail[0:])), uint64(bo.Uint16(tail[2:]))
	f.shentsize, f.shnum = uint64(bo.Uint16(tail[4:])), uint64(bo.Uint16(tail[6:]))
	f.shstrndx = uint64(bo.Uint16(tail[8:]))
	return f.checkTables()
}

// checkTables applies extended numbering and checks that both header tables
// lie inside the file with entries of a sane size and count.
func (f *file) checkTables() error {
	minSh, minPh := uint64(shdr64Size), uint64(phdr64Size)
	if f.class == 32 {
		minSh, minPh = shdr32Size, phdr32Size
	}
	if f.shoff != 0 {
		if f.shentsize < minSh || f.shentsize > maxEntrySize {
			return fmt.Errorf("ELF header: e_shentsize %d, want %d to %d: %w", f.shentsize, minSh, maxEntrySize, errdef.ErrInvalid)
		}
		if f.shnum == 0 || f.shstrndx == shnXIndex || f.phnum == pnXNum {
			// Extended numbering: the real values are in section 0.
			s0, err := f.sectionAt(0)
			if err != nil {
				return err
			}
			if f.shnum == 0 {
				f.shnum = s0.size
			}
			if f.shstrndx == shnXIndex {
				f.shstrndx = uint64(s0.link)
			}
			if f.phnum == pnXNum {
				f.phnum = uint64(s0.info)
			}
		}
		if f.shnum > MaxSections {
			return fmt.Errorf("ELF header: %d sections, over the limit of %d: %w", f.shnum, MaxSections, errdef.ErrInvalid)
		}
		if !within(f.shoff, f.shnum*f.shentsize, f.size) {
			return fmt.Errorf("ELF header: section header table (%d entries at offset %d) past the end of the file (%d bytes): %w", f.shnum, f.shoff, f.size, errdef.ErrInvalid)
		}
	} else {
		f.shnum = 0
	}
	if f.phoff == 0 || f.phnum == 0 {
		f.phnum = 0
		return nil
	}
	if f.phentsize < minPh || f.phentsize > maxEntrySize {
		return fmt.Errorf("ELF header: e_phentsize %d, want %d to %d: %w", f.phentsize, minPh, maxEntrySize, errdef.ErrInvalid)
	}
	if f.phnum > MaxSegments {
		return fmt.Errorf("ELF header: %d program headers, over the limit of %d: %w", f.phnum, MaxSegments, errdef.ErrInvalid)
	}
	if !within(f.phoff, f.phnum*f.phentsize, f.size) {
		return fmt.Errorf("ELF header: program header table (%d entries at offset %d) past the end of the file (%d bytes): %w", f.phnum, f.phoff, f.size, errdef.ErrInvalid)
	}
	return nil
}

// sectionAt reads section header i (i < shnum, or 0 before shnum is known).
func (f *file) sectionAt(i uint64) (section, error) {
	var b [maxEntrySize]byte
	e := b[:f.shentsize]
	what := fmt.Sprintf("section header %d", i)
	if err := f.readAt(e, f.shoff+i*f.shentsize, what); err != nil {
		return section{}, err
	}
	return f.parseSection(e), nil
}

func (f *file) parseSection(e []byte) section {
	bo := f.bo
	if f.class == 32 {
		return section{
			name: bo.Uint32(e[0:]), typ: bo.Uint32(e[4:]), flags: uint64(bo.Uint32(e[8:])),
			off: uint64(bo.Uint32(e[16:])), size: uint64(bo.Uint32(e[20:])),
			link: bo.Uint32(e[24:]), info: bo.Uint32(e[28:]), addralign: uint64(bo.Uint32(e[32:])),
		}
	}
	return section{
		name: bo.Uint32(e[0:]), typ: bo.Uint32(e[4:]), flags: bo.Uint64(e[8:]),
		off: bo.Uint64(e[24:]), size: bo.Uint64(e[32:]),
		link: bo.Uint32(e[40:]), info: bo.Uint32(e[44:]), addralign: bo.Uint64(e[48:]),
	}
}

// noteRegions returns the PT_NOTE segments and the SHT_NOTE sections (each
// checked to lie inside the file and to be at most MaxNoteBytes), and
// records .text.
func (f *file) noteRegions() ([]region, error) {
	var regions []region
	seen := map[[2]uint64]bool{}
	add := func(r region) error {
		if r.size == 0 || seen[[2]uint64{r.off, r.size}] {
			return nil
		}
		if r.size > MaxNoteBytes {
			return fmt.Errorf("%s: %d bytes, over the limit of %d: %w", r.name, r.size, MaxNoteBytes, errdef.ErrInvalid)
		}
		if !within(r.off, r.size, f.size) {
			return fmt.Errorf("%s: %d bytes at offset %d: past the end of the file (%d bytes): %w", r.name, r.size, r.off, f.size, errdef.ErrInvalid)
		}
		seen[[2]uint64{r.off, r.size}] = true
		regions = append(regions, r)
		return nil
	}
	if f.phnum > 0 {
		br := bufio.NewReaderSize(io.NewSectionReader(f.r, int64(f.phoff), int64(f.phnum*f.phentsize)), 16<<10)
		var b [maxEntrySize]byte
		e := b[:f.phentsize]
		for i := uint64(0); i < f.phnum; i++ {
			if err := f.readEntry(br, e, "program header", i); err != nil {
				return nil, err
			}
			bo := f.bo
			if elf.ProgType(bo.Uint32(e)) != elf.PT_NOTE {
				continue
			}
			r := region{name: fmt.Sprintf("PT_NOTE segment %d", i)}
			if f.class == 32 {
				r.off, r.size, r.align = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[16:])), uint64(bo.Uint32(e[28:]))
			} else {
				r.off, r.size, r.align = bo.Uint64(e[8:]), bo.Uint64(e[32:]), bo.Uint64(e[48:])
			}
			if err := add(r); err != nil {
				return nil, err
			}
		}
	}
	if f.shnum == 0 {
		return regions, nil
	}
	var strtab section
	if f.shstrndx != uint64(elf.SHN_UNDEF) && f.shstrndx < f.shnum {
		var err error
		if strtab, err = f.sectionAt(f.shstrndx); err != nil {
			return nil, err
		}
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f.r, int64(f.shoff), int64(f.shnum*f.shentsize)), 16<<10)
	var b [maxEntrySize]byte
	e := b[:f.shentsize]
	for i := uint64(0); i < f.shnum; i++ {
		if err := f.readEntry(br, e, "section header", i); err != nil {
			return nil, err
		}
		s := f.parseSection(e)
		switch {
		case elf.SectionType(s.typ) == elf.SHT_NOTE && s.flags&shfCompressed == 0:
			name, err := f.sectionName(strtab, s.name, i)
			if err != nil {
				return nil, err
			}
			r := region{name: fmt.Sprintf("section %d (%s)", i, name), off: s.off, size: s.size, align: s.addralign}
			if err := add(r); err != nil {
				return nil, err
			}
		case !f.text.ok && elf.SectionType(s.typ) == elf.SHT_PROGBITS && s.flags&shfExecInstr != 0 && s.flags&shfCompressed == 0:
			name, err := f.sectionName(strtab, s.name, i)
			if err != nil {
				return nil, err
			}
			if name != ".text" {
				continue
			}
			if !within(s.off, s.size, f.size) {
				return nil, fmt.Errorf("section %d (.text): %d bytes at offset %d: past the end of the file (%d bytes): %w", i, s.size, s.off, f.size, errdef.ErrInvalid)
			}
			f.text.ok, f.text.off, f.text.size = true, s.off, s.size
		}
	}
	return regions, nil
}

// readEntry reads table entry i from br into e.
func (f *file) readEntry(br *bufio.Reader, e []byte, what string, i uint64) error {
	if _, err := io.ReadFull(br, e); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s %d: the file is shorter than it says: %w", what, i, errdef.ErrInvalid)
		}
		return fmt.Errorf("reading %s %d: %w: %w", what, i, errdef.ErrIO, err)
	}
	return nil
}

// maxSectionName bounds the section names read (only short names matter
// here; a longer one is shown cut).
const maxSectionName = 64

// sectionName returns the name at off in strtab, "" when the file has no
// section name table, at most maxSectionName bytes.
func (f *file) sectionName(strtab section, off uint32, i uint64) (string, error) {
	if strtab.size == 0 || elf.SectionType(strtab.typ) == elf.SHT_NOBITS || strtab.flags&shfCompressed != 0 {
		return "", nil
	}
	if uint64(off) >= strtab.size {
		return "", fmt.Errorf("section %d: name offset %d past the section name table (%d bytes): %w", i, off, strtab.size, errdef.ErrInvalid)
	}
	n := min(strtab.size-uint64(off), maxSectionName)
	if !within(strtab.off, strtab.size, f.size) {
		return "", fmt.Errorf("section %d (section name table): %d bytes at offset %d: past the end of the file (%d bytes): %w", f.shstrndx, strtab.size, strtab.off, f.size, errdef.ErrInvalid)
	}
	var b [maxSectionName]byte
	if err := f.readAt(b[:n], strtab.off+uint64(off), fmt.Sprintf("section %d name", i)); err != nil {
		return "", err
	}
	name := b[:n]
	for j, c := range name {
		if c == 0 {
			return string(name[:j]), nil
		}
	}
	return string(name) + "…", nil
}
