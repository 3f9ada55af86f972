package debugstore

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/errdef"
)

// MaxSectionNameBytes is the longest section name looked up.
const MaxSectionNameBytes = 256

// Section is where a named section's bytes lie in an ELF file.
type Section struct {
	// Index is the section's index in the section header table.
	Index uint64
	// Offset and Size place its bytes in the file (inside it: checked).
	Offset, Size int64
	// Compressed is SHF_COMPRESSED: the bytes are the compression header
	// and the compressed data, as the file holds them.
	Compressed bool
}

// FindSection returns the first section named name in the ELF file of size
// bytes in r, walking the section header table with the same checks as
// ReadBuildID. found is false when the file has no such section, or only a
// SHT_NOBITS one (it has no bytes in the file: .bss, or any section of a
// .debug file that objcopy --only-keep-debug emptied). A section that has
// bytes must lie inside the file, else it is an error wrapping
// errdef.ErrInvalid; its bytes are never read nor inflated here.
func FindSection(r io.ReaderAt, size int64, name string) (s Section, found bool, err error) {
	if size < 0 {
		return Section{}, false, fmt.Errorf("negative size %d: %w", size, errdef.ErrInvalid)
	}
	if name == "" || len(name) > MaxSectionNameBytes {
		return Section{}, false, nil
	}
	f := &file{r: r, size: uint64(size)}
	if err := f.readHeader(); err != nil {
		return Section{}, false, err
	}
	if f.shnum == 0 || f.shstrndx == uint64(elf.SHN_UNDEF) || f.shstrndx >= f.shnum {
		return Section{}, false, nil
	}
	strtab, err := f.sectionAt(f.shstrndx)
	if err != nil {
		return Section{}, false, err
	}
	if strtab.size == 0 || elf.SectionType(strtab.typ) == elf.SHT_NOBITS || strtab.flags&shfCompressed != 0 {
		return Section{}, false, nil
	}
	if !within(strtab.off, strtab.size, f.size) {
		return Section{}, false, fmt.Errorf("section %d (section name table): %d bytes at offset %d: past the end of the file (%d bytes): %w", f.shstrndx, strtab.size, strtab.off, f.size, errdef.ErrInvalid)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f.r, int64(f.shoff), int64(f.shnum*f.shentsize)), 16<<10)
	var b [maxEntrySize]byte
	e := b[:f.shentsize]
	var nb [MaxSectionNameBytes + 1]byte
	want := nb[:len(name)+1]
	for i := uint64(0); i < f.shnum; i++ {
		if err := f.readEntry(br, e, "section header", i); err != nil {
			return Section{}, false, err
		}
		sh := f.parseSection(e)
		if i == 0 || uint64(sh.name) >= strtab.size {
			continue
		}
		// The name is the len(name) bytes at sh.name and a NUL.
		if uint64(len(want)) > strtab.size-uint64(sh.name) {
			continue
		}
		if err := f.readAt(want, strtab.off+uint64(sh.name), fmt.Sprintf("section %d name", i)); err != nil {
			return Section{}, false, err
		}
		if want[len(name)] != 0 || string(want[:len(name)]) != name {
			continue
		}
		if elf.SectionType(sh.typ) == elf.SHT_NOBITS {
			return Section{}, false, nil
		}
		if !within(sh.off, sh.size, f.size) {
			return Section{}, false, fmt.Errorf("section %d (%s): %d bytes at offset %d: past the end of the file (%d bytes): %w", i, name, sh.size, sh.off, f.size, errdef.ErrInvalid)
		}
		return Section{Index: i, Offset: int64(sh.off), Size: int64(sh.size), Compressed: sh.flags&shfCompressed != 0}, true, nil
	}
	return Section{}, false, nil
}
