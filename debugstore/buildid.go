package debugstore

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/offkit/offkit/internal/errdef"
)

// Limits on what ReadBuildID reads from a file.
const (
	// MaxNoteBytes is the largest note segment or section read (a core
	// file's PT_NOTE of a process of many threads runs to megabytes).
	MaxNoteBytes = 64 << 20
	// MaxSections is the most section headers a file may declare.
	MaxSections = 1 << 20
	// MaxSegments is the most program headers a file may declare.
	MaxSegments = 1 << 16
	// MaxBuildIDBytes is the longest GNU build id (a SHA-512 is 64 bytes).
	MaxBuildIDBytes = 64
	// MaxGoBuildIDBytes is the longest Go build id (Go's are 83 bytes).
	MaxGoBuildIDBytes = 256
	// GoScanBytes is how much of .text is searched for a Go build id
	// string when the file has no Go note (as Go's own reader does).
	GoScanBytes = 32 << 10
)

// TextSHA256Prefix starts the fallback id of a file without a GNU build id
// note, so that it is never mistaken for one (a build id is bare hex).
const TextSHA256Prefix = "text-sha256:"

// ErrNotELF is a file that does not start with the ELF magic.
var ErrNotELF = fmt.Errorf("not an ELF file: %w", errdef.ErrInvalid)

// BuildID is what ReadBuildID found in one ELF file.
type BuildID struct {
	// GNU is the NT_GNU_BUILD_ID note's descriptor in lowercase hex, ""
	// when the file has no such note.
	GNU string
	// Go is the Go build id, "" when the file has none.
	Go string
	// TextSHA256 is TextSHA256Prefix and the SHA-256 of .text in
	// lowercase hex when GNU is "", and the file has an uncompressed
	// .text section; "" otherwise.
	TextSHA256 string
	// Class is 32 or 64.
	Class int
	// ByteOrder is "little" or "big".
	ByteOrder string
	// Machine is the ELF e_machine (elf.EM_X86_64, …).
	Machine elf.Machine
	// Type is the ELF e_type (elf.ET_EXEC, elf.ET_DYN, …).
	Type elf.Type
}

// String is the id that names the file: GNU, else TextSHA256, else "".
func (b BuildID) String() string {
	if b.GNU != "" {
		return b.GNU
	}
	return b.TextSHA256
}

// ReadBuildID reads the build ids of the ELF file of size bytes in r (see
// the package documentation for what it reads and refuses).
func ReadBuildID(r io.ReaderAt, size int64) (BuildID, error) {
	return readBuildID(r, size, true)
}

// ReadGNUBuildID reads the header fields and the GNU build id of the ELF
// file of size bytes in r, as ReadBuildID does, but neither hashes .text
// nor looks for a Go build id: it reads only the header, the header tables,
// the section names of note sections and the notes.
func ReadGNUBuildID(r io.ReaderAt, size int64) (BuildID, error) {
	return readBuildID(r, size, false)
}

func readBuildID(r io.ReaderAt, size int64, full bool) (BuildID, error) {
	if size < 0 {
		return BuildID{}, fmt.Errorf("negative size %d: %w", size, errdef.ErrInvalid)
	}
	f := &file{r: r, size: uint64(size)}
	if err := f.readHeader(); err != nil {
		return BuildID{}, err
	}
	id := BuildID{Class: f.class, ByteOrder: "little", Machine: f.machine, Type: f.typ}
	if f.order == bigEndian {
		id.ByteOrder = "big"
	}
	regions, err := f.noteRegions()
	if err != nil {
		return BuildID{}, err
	}
	var gnuAt string
	for _, reg := range regions {
		notes, err := f.readNotes(reg)
		if err != nil {
			return BuildID{}, err
		}
		for _, n := range notes {
			switch n.kind {
			case noteGNUBuildID:
				h, at := hex.EncodeToString(n.desc), fmt.Sprintf("%s, note at offset %d", reg.name, n.at)
				if id.GNU != "" && id.GNU != h {
					return BuildID{}, fmt.Errorf("%s: GNU build id %s, but %s has %s: %w", at, h, gnuAt, id.GNU, errdef.ErrInvalid)
				}
				id.GNU, gnuAt = h, at
			case noteGoBuildID:
				if id.Go == "" {
					id.Go = string(n.desc)
				}
			}
		}
	}
	if !full {
		return id, nil
	}
	if id.GNU == "" && f.text.ok {
		sum, err := f.hashText()
		if err != nil {
			return BuildID{}, err
		}
		id.TextSHA256 = TextSHA256Prefix + sum
	}
	if id.Go == "" {
		if id.Go, err = f.scanGoBuildID(); err != nil {
			return BuildID{}, err
		}
	}
	return id, nil
}

// hashText returns the SHA-256 of .text in lowercase hex.
func (f *file) hashText() (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f.r, int64(f.text.off), int64(f.text.size)))
	if err != nil {
		return "", fmt.Errorf("reading .text: %w: %w", errdef.ErrIO, err)
	}
	if uint64(n) != f.text.size {
		return "", fmt.Errorf(".text: %d of %d bytes: the file is shorter than it says: %w", n, f.text.size, errdef.ErrInvalid)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goBuildPrefix and goBuildEnd frame the Go build id string that the Go
// linker puts at the start of the text.
var (
	goBuildPrefix = []byte("\xff Go build ID: \"")
	goBuildEnd    = []byte("\"\n \xff")
)

// scanGoBuildID looks for the Go build id string in the first GoScanBytes of
// .text, or of the file when it has no usable .text.
func (f *file) scanGoBuildID() (string, error) {
	off, n := uint64(0), f.size
	if f.text.ok {
		off, n = f.text.off, f.text.size
	}
	n = min(n, GoScanBytes)
	buf := make([]byte, n)
	if err := f.readAt(buf, off, "the start of the text"); err != nil {
		return "", err
	}
	i := bytes.Index(buf, goBuildPrefix)
	if i < 0 {
		return "", nil
	}
	rest := buf[i+len(goBuildPrefix)-1:]
	j := bytes.Index(rest, goBuildEnd)
	if j < 0 || j > MaxGoBuildIDBytes+2 {
		return "", nil
	}
	s, err := strconv.Unquote(string(rest[:j+1]))
	if err != nil || !goIDOK(s) {
		return "", nil
	}
	return s, nil
}

// goIDOK reports whether s can be a Go build id: 1 to MaxGoBuildIDBytes of
// printable ASCII without spaces, quotes or backslashes (Go's own are
// base64url parts separated by slashes, but -ldflags=-buildid= sets any).
func goIDOK(s string) bool {
	if s == "" || len(s) > MaxGoBuildIDBytes {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// readAt reads len(b) bytes at off, which must lie inside the file.
func (f *file) readAt(b []byte, off uint64, what string) error {
	if !within(off, uint64(len(b)), f.size) {
		return fmt.Errorf("%s: %d bytes at offset %d: past the end of the file (%d bytes): %w", what, len(b), off, f.size, errdef.ErrInvalid)
	}
	n, err := f.r.ReadAt(b, int64(off))
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %d bytes at offset %d: the file is shorter than it says: %w", what, len(b), off, errdef.ErrInvalid)
	}
	return fmt.Errorf("reading %s: %w: %w", what, errdef.ErrIO, err)
}

// within reports whether [off, off+n) lies inside [0, size), without
// overflow.
func within(off, n, size uint64) bool {
	return off <= size && n <= size-off
}
