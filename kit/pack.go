package kit

import (
	"fmt"
	"io"

	"github.com/offkit/offkit/kitfile"
)

// Default encoder settings, recorded in every manifest.
const (
	DefaultLevel     = 3
	DefaultFrameSize = 4 << 20
	// MaxFrameSize bounds a spec's frame size.
	MaxFrameSize = 32 << 20
)

// addFed writes one regular file entry of size bytes, taken from f.
func addFed(w *kitfile.Writer, name string, size int64, f *feed) error {
	if err := w.WriteHeader(name, size); err != nil {
		return err
	}
	for n := size; n > 0; {
		b, err := f.take(n)
		if err == io.EOF {
			return fmt.Errorf("packing %s: the sources ended %d bytes early", name, n)
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("packing %s: %w", name, err)
		}
		n -= int64(len(b))
	}
	return nil
}
