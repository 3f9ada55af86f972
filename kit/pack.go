package kit

import (
	"fmt"

	"github.com/offkit/offkit/kitfile"
)

// Default encoder settings, recorded in every manifest.
const (
	DefaultLevel     = 3
	DefaultFrameSize = 4 << 20
	// MaxFrameSize bounds a spec's frame size.
	MaxFrameSize = 32 << 20
)

// addFed writes one regular file entry of size bytes, the next entry of f.
// It fails if f ends the entry with an error, or with more or fewer bytes.
func addFed(w *kitfile.Writer, name string, size int64, f *feed) error {
	if err := w.WriteHeader(name, size); err != nil {
		return err
	}
	var n int64
	for {
		c := f.next()
		if c.b == nil {
			if c.err != nil {
				return c.err
			}
			break
		}
		if n+int64(len(c.b)) <= size {
			if _, err := w.Write(c.b); err != nil {
				return fmt.Errorf("packing %s: %w", name, err)
			}
		}
		n += int64(len(c.b))
		f.recycle(c.b)
	}
	if n != size {
		return fmt.Errorf("packing %s: read %d bytes, expected %d (did the file change?)", name, n, size)
	}
	return nil
}
