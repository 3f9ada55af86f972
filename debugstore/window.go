package debugstore

import (
	"fmt"
	"io"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
)

// The bytes of a .build-id file that are read to check its name: its first
// WindowHead and its last WindowTail bytes. The ELF header, the program
// header table and the note sections come first in what linkers and
// objcopy write; the section header table and the section names come last.
// Build and verify read the same window, so a file whose notes or tables
// lie outside it is refused by both, never accepted by one alone.
const (
	WindowHead = 1 << 20
	WindowTail = 1 << 20
)

// Window keeps the first WindowHead and the last WindowTail bytes of a
// file of a known size written to it as a stream (in constant memory: at
// most their sum), and reads them back as an io.ReaderAt. A read of any
// other byte fails with errdef.ErrInvalid.
type Window struct {
	size    int64
	n       int64
	head    []byte
	tail    []byte // byte at file offset o is tail[o % len(tail)]
	tailOff int64  // first offset the tail keeps
}

// NewWindow returns a Window for a file of size bytes.
func NewWindow(size int64) *Window {
	w := &Window{size: size}
	w.head = make([]byte, 0, min(size, WindowHead))
	if rest := size - WindowHead; rest > 0 {
		w.tail = make([]byte, min(rest, WindowTail))
		w.tailOff = size - int64(len(w.tail))
	}
	return w
}

// Write keeps what the window holds of p, the next bytes of the file.
func (w *Window) Write(p []byte) (int, error) {
	n := len(p)
	if w.n+int64(n) > w.size {
		return 0, fmt.Errorf("%d bytes written to a window of a %d-byte file: %w", w.n+int64(n), w.size, errdef.ErrInvalid)
	}
	if room := WindowHead - len(w.head); room > 0 && w.n < WindowHead {
		k := min(room, len(p))
		w.head = append(w.head, p[:k]...)
		w.n += int64(k)
		p = p[k:]
	}
	if len(p) > 0 && len(w.tail) > 0 {
		end := w.n + int64(len(p))
		if skip := w.tailOff - w.n; skip > 0 {
			if skip >= int64(len(p)) {
				w.n = end
				return n, nil
			}
			p, w.n = p[skip:], w.tailOff
		}
		for len(p) > 0 {
			i := int(w.n % int64(len(w.tail)))
			k := copy(w.tail[i:], p)
			p, w.n = p[k:], w.n+int64(k)
		}
		w.n = end
		return n, nil
	}
	w.n += int64(len(p))
	return n, nil
}

// Complete reports whether every byte of the file has been written.
func (w *Window) Complete() bool { return w.n == w.size }

// ReadAt reads from the bytes the window keeps.
func (w *Window) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("offset %d: %w", off, errdef.ErrInvalid)
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		switch {
		case o >= w.size || o >= w.n:
			return n, io.EOF
		case o < int64(len(w.head)):
			n += copy(p[n:], w.head[o:])
		case len(w.tail) > 0 && o >= w.tailOff:
			i := int(o % int64(len(w.tail)))
			end := min(len(w.tail), i+int(w.size-o))
			n += copy(p[n:], w.tail[i:end])
		default:
			return n, fmt.Errorf("bytes %d to %d: %w", off, off+int64(len(p)), errOutside)
		}
	}
	return n, nil
}

var errOutside = fmt.Errorf("outside the first %d and the last %d bytes of the file, where build id notes and ELF header tables are read: %w", WindowHead, WindowTail, errdef.ErrInvalid)

// CheckStoredName checks that the file at kit path (or site path) name,
// one of a .build-id tree (…/.build-id/<aa>/<rest>.debug or
// …/.build-id/<aa>/<rest>), has the GNU build id <aa><rest>, read from r (a
// Window, or the whole file) as ReadGNUBuildID reads it. A name that is no
// build id's is not checked (ok false). The error wraps errdef.ErrInvalid
// and names both ids (the caller names the file).
func CheckStoredName(name string, r io.ReaderAt, size int64) (ok bool, err error) {
	want, ok := StoredID(name)
	if !ok {
		return false, nil
	}
	id, err := ReadGNUBuildID(r, size)
	if err != nil {
		return true, fmt.Errorf("named for build id %s, but its build id cannot be read: %w", want, err)
	}
	if id.GNU == "" {
		return true, fmt.Errorf("named for build id %s, but it has no GNU build id note: %w", want, errdef.ErrInvalid)
	}
	if id.GNU != want {
		return true, fmt.Errorf("named for build id %s, but its build id is %s: %w", want, id.GNU, errdef.ErrInvalid)
	}
	return true, nil
}

// StoredID returns the build id a path of a .build-id tree names: the
// last three elements are .build-id, <aa> and <rest>.debug or <rest>, with
// <aa><rest> a build id ParseID accepts in lowercase.
func StoredID(name string) (string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) < 3 || parts[len(parts)-3] != ".build-id" {
		return "", false
	}
	aa, rest := parts[len(parts)-2], strings.TrimSuffix(parts[len(parts)-1], ".debug")
	if len(aa) != 2 {
		return "", false
	}
	id, err := ParseID(aa + rest)
	if err != nil || id != aa+rest {
		return "", false
	}
	return id, true
}
