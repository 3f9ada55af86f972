package debugstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"

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

// regionReader reads a region front to back through a small buffer, so a
// region of many notes costs one read per buffer, not per note.
type regionReader struct {
	r   region
	br  *bufio.Reader
	pos uint64
}

// readAt reads len(b) bytes at offset at (at or after the last read) of the
// region, which the caller checked to lie inside it.
func (rr *regionReader) readAt(b []byte, at uint64, what string) error {
	var err error
	if at > rr.pos {
		var n int
		n, err = rr.br.Discard(int(at - rr.pos))
		rr.pos += uint64(n)
	}
	if err == nil {
		var n int
		n, err = io.ReadFull(rr.br, b)
		rr.pos += uint64(n)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %s: the file is shorter than it says: %w", rr.r.name, what, errdef.ErrInvalid)
	}
	return fmt.Errorf("reading %s: %s: %w: %w", rr.r.name, what, errdef.ErrIO, err)
}

// readNotes returns the GNU and Go build id notes of region r. Every other
// note is skipped without reading its name or descriptor.
func (f *file) readNotes(r region) ([]note, error) {
	align, err := noteAlign(r)
	if err != nil {
		return nil, err
	}
	rr := &regionReader{r: r, br: bufio.NewReaderSize(io.NewSectionReader(f.r, int64(r.off), int64(r.size)), int(min(r.size, 4096)))}
	var notes []note
	for p := uint64(0); p < r.size; {
		if r.size-p < noteHeaderSize {
			return nil, fmt.Errorf("%s: note at offset %d: %d bytes left, not enough for a note header: %w", r.name, p, r.size-p, errdef.ErrInvalid)
		}
		var h [noteHeaderSize]byte
		if err := rr.readAt(h[:], p, fmt.Sprintf("note at offset %d", p)); err != nil {
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
			if err := rr.readAt(name[:], p+noteHeaderSize, fmt.Sprintf("note at offset %d: name", p)); err != nil {
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
			n, err := readNoteDesc(rr, p, kind, descOff, descsz)
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
func readNoteDesc(rr *regionReader, p uint64, kind noteKind, descOff, descsz uint64) (note, error) {
	r := rr.r
	what, max := "GNU build id", uint64(MaxBuildIDBytes)
	if kind == noteGoBuildID {
		what, max = "Go build id", MaxGoBuildIDBytes
	}
	if descsz == 0 || descsz > max {
		return note{}, fmt.Errorf("%s: note at offset %d: %s of %d bytes, want 1 to %d: %w", r.name, p, what, descsz, max, errdef.ErrInvalid)
	}
	desc := make([]byte, descsz)
	if err := rr.readAt(desc, descOff, fmt.Sprintf("note at offset %d: %s", p, what)); err != nil {
		return note{}, err
	}
	if kind == noteGoBuildID && !goIDOK(string(desc)) {
		return note{}, fmt.Errorf("%s: note at offset %d: Go build id %q is not one: %w", r.name, p, desc, errdef.ErrInvalid)
	}
	return note{kind: kind, at: p, desc: desc}, nil
}
