package debugstore

import (
	"fmt"

	"github.com/offkit/offkit/internal/errdef"
)

// The note parser: one note segment or section, already checked to lie
// inside the file and to be at most MaxNoteBytes.

const (
	noteHeaderSize = 12 // namesz, descsz, type: three 4-byte words in every class
	ntGNUBuildID   = 3
	ntGoBuildID    = 4
)

type noteKind int

const (
	noteGNUBuildID noteKind = iota + 1
	noteGoBuildID
)

// note is a build id note found in a region.
type note struct {
	kind noteKind
	at   uint64 // offset in its region
	desc []byte
}

// noteAlign returns the alignment of the notes in a region of alignment
// align: 4 (also for 0 to 3) or 8, as readelf reads them.
func noteAlign(r region) (uint64, error) {
	switch {
	case r.align <= 4:
		return 4, nil
	case r.align == 8:
		return 8, nil
	}
	return 0, fmt.Errorf("%s: note alignment %d, want 4 or 8: %w", r.name, r.align, errdef.ErrInvalid)
}

// alignUp rounds n up to a multiple of a (a power of two); n is at most
// 2^33, so it never overflows.
func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// readNotes returns the GNU and Go build id notes of region r. Every other
// note is skipped without reading its name or descriptor.
func (f *file) readNotes(r region) ([]note, error) {
	align, err := noteAlign(r)
	if err != nil {
		return nil, err
	}
	var notes []note
	for p := uint64(0); p < r.size; {
		if r.size-p < noteHeaderSize {
			return nil, fmt.Errorf("%s: note at offset %d: %d bytes left, not enough for a note header: %w", r.name, p, r.size-p, errdef.ErrInvalid)
		}
		var h [noteHeaderSize]byte
		if err := f.readAt(h[:], r.off+p, fmt.Sprintf("%s: note at offset %d", r.name, p)); err != nil {
			return nil, err
		}
		namesz, descsz, typ := uint64(f.bo.Uint32(h[0:])), uint64(f.bo.Uint32(h[4:])), f.bo.Uint32(h[8:])
		// Offsets within the region; each term is below 2^33 (sizes are
		// 32-bit words, p at most MaxNoteBytes), so no sum overflows.
		descOff := alignUp(p+noteHeaderSize+namesz, align)
		next := alignUp(descOff+descsz, align)
		if descOff+descsz > r.size {
			return nil, fmt.Errorf("%s: note at offset %d: name of %d and descriptor of %d bytes run past the end of the notes (%d bytes): %w", r.name, p, namesz, descsz, r.size, errdef.ErrInvalid)
		}
		kind := noteKind(0)
		if namesz == 4 && (typ == ntGNUBuildID || typ == ntGoBuildID) {
			var name [4]byte
			if err := f.readAt(name[:], r.off+p+noteHeaderSize, fmt.Sprintf("%s: note at offset %d: name", r.name, p)); err != nil {
				return nil, err
			}
			switch {
			case typ == ntGNUBuildID && string(name[:]) == "GNU\x00":
				kind = noteGNUBuildID
			case typ == ntGoBuildID && string(name[:]) == "Go\x00\x00":
				kind = noteGoBuildID
			}
		}
		if kind != 0 {
			n, err := f.readNoteDesc(r, p, kind, descOff, descsz)
			if err != nil {
				return nil, err
			}
			notes = append(notes, n)
		}
		// The last note's padding may be cut at the end of the region.
		p = min(next, r.size)
	}
	return notes, nil
}

// readNoteDesc reads and checks the descriptor of a build id note.
func (f *file) readNoteDesc(r region, p uint64, kind noteKind, descOff, descsz uint64) (note, error) {
	what, max := "GNU build id", uint64(MaxBuildIDBytes)
	if kind == noteGoBuildID {
		what, max = "Go build id", MaxGoBuildIDBytes
	}
	if descsz == 0 || descsz > max {
		return note{}, fmt.Errorf("%s: note at offset %d: %s of %d bytes, want 1 to %d: %w", r.name, p, what, descsz, max, errdef.ErrInvalid)
	}
	desc := make([]byte, descsz)
	if err := f.readAt(desc, r.off+descOff, fmt.Sprintf("%s: note at offset %d: %s", r.name, p, what)); err != nil {
		return note{}, err
	}
	if kind == noteGoBuildID && !goIDOK(string(desc)) {
		return note{}, fmt.Errorf("%s: note at offset %d: Go build id %q is not one: %w", r.name, p, desc, errdef.ErrInvalid)
	}
	return note{kind: kind, at: p, desc: desc}, nil
}
