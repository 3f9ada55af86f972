// Package elfgen writes small, well-formed ELF files that carry a GNU build
// id note: the data of tests, of the demo's example kit and of the debug
// bench, with no compiler needed.
//
// The file is a 64-bit little-endian x86-64 ELF: the header, one PT_NOTE
// program header, the note (.note.gnu.build-id), an optional filler section
// (.debug_filler, deterministic noise, as large as asked), the section name
// table, and the section header table last, where linkers put it.
package elfgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
)

// Options describe a file.
type Options struct {
	// BuildID is the GNU build id note's descriptor (1 to 64 bytes).
	BuildID []byte
	// Filler is the size of the .debug_filler section.
	Filler int64
	// Seed picks the filler's bytes.
	Seed uint64
}

const (
	ehdrSize  = 64
	phdrSize  = 56
	shdrSize  = 64
	noteOff   = ehdrSize + phdrSize
	shtNote   = 7
	shtProg   = 1
	shtStrtab = 3
	ptNote    = 4
	emX8664   = 62
	etExec    = 2
)

var shstrtab = []byte("\x00.note.gnu.build-id\x00.debug_filler\x00.shstrtab\x00")

// Size is the size of the file o describes.
func Size(o Options) int64 {
	l := layout(o)
	return l.shoff + l.shnum*shdrSize
}

type lay struct {
	noteSize, fillOff, strOff, shoff, shnum int64
}

func layout(o Options) lay {
	var l lay
	l.noteSize = 16 + int64((len(o.BuildID)+3)&^3)
	l.fillOff = (noteOff + l.noteSize + 7) &^ 7
	l.strOff = l.fillOff + o.Filler
	l.shoff = (l.strOff + int64(len(shstrtab)) + 7) &^ 7
	l.shnum = 3
	if o.Filler > 0 {
		l.shnum = 4
	}
	return l
}

// Write writes the file o describes to w, streaming the filler.
func Write(w io.Writer, o Options) error {
	if len(o.BuildID) == 0 || len(o.BuildID) > 64 || o.Filler < 0 {
		return errors.New("elfgen: a build id of 1 to 64 bytes and a filler size of 0 or more")
	}
	l := layout(o)
	bw := bufio.NewWriterSize(w, 1<<20)
	le := binary.LittleEndian
	var b bytes.Buffer
	h := make([]byte, ehdrSize)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], etExec)
	le.PutUint16(h[18:], emX8664)
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[32:], ehdrSize)        // e_phoff
	le.PutUint64(h[40:], uint64(l.shoff)) // e_shoff
	le.PutUint16(h[52:], ehdrSize)
	le.PutUint16(h[54:], phdrSize)
	le.PutUint16(h[56:], 1)
	le.PutUint16(h[58:], shdrSize)
	le.PutUint16(h[60:], uint16(l.shnum))
	le.PutUint16(h[62:], uint16(l.shnum-1)) // .shstrtab is last
	b.Write(h)
	ph := make([]byte, phdrSize)
	le.PutUint32(ph[0:], ptNote)
	le.PutUint32(ph[4:], 4) // PF_R
	le.PutUint64(ph[8:], noteOff)
	le.PutUint64(ph[16:], noteOff)
	le.PutUint64(ph[24:], noteOff)
	le.PutUint64(ph[32:], uint64(l.noteSize))
	le.PutUint64(ph[40:], uint64(l.noteSize))
	le.PutUint64(ph[48:], 4)
	b.Write(ph)
	n := make([]byte, l.noteSize)
	le.PutUint32(n[0:], 4)
	le.PutUint32(n[4:], uint32(len(o.BuildID)))
	le.PutUint32(n[8:], 3) // NT_GNU_BUILD_ID
	copy(n[12:], "GNU\x00")
	copy(n[16:], o.BuildID)
	b.Write(n)
	b.Write(make([]byte, l.fillOff-int64(b.Len())))
	if _, err := bw.Write(b.Bytes()); err != nil {
		return err
	}
	if o.Filler > 0 {
		r := rand.NewChaCha8([32]byte{byte(o.Seed), byte(o.Seed >> 8), byte(o.Seed >> 16), byte(o.Seed >> 24), byte(o.Seed >> 32), byte(o.Seed >> 40), byte(o.Seed >> 48), byte(o.Seed >> 56)})
		if _, err := io.CopyN(bw, r, o.Filler); err != nil {
			return err
		}
	}
	b.Reset()
	b.Write(shstrtab)
	b.Write(make([]byte, l.shoff-l.strOff-int64(len(shstrtab))))
	sh := func(name, typ uint32, flags uint64, off, size int64, align uint64) {
		s := make([]byte, shdrSize)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[8:], flags)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], align)
		b.Write(s)
	}
	sh(0, 0, 0, 0, 0, 0)
	sh(1, shtNote, 2 /* SHF_ALLOC */, noteOff, l.noteSize, 4)
	if o.Filler > 0 {
		sh(20, shtProg, 0, l.fillOff, o.Filler, 1)
	}
	sh(34, shtStrtab, 0, l.strOff, int64(len(shstrtab)), 1)
	if _, err := bw.Write(b.Bytes()); err != nil {
		return err
	}
	return bw.Flush()
}

// Bytes returns the file o describes.
func Bytes(o Options) []byte {
	var b bytes.Buffer
	if err := Write(&b, o); err != nil {
		panic(err)
	}
	return b.Bytes()
}
