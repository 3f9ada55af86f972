package kitfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/offkit/offkit/internal/errdef"
)

// Open opens the kit (or signature) file at path for reading and returns it
// with its size. Anything but a regular file (a FIFO, a device, a folder)
// is refused at once with errdef.ErrInvalid, without waiting for a writer:
// the file is opened non-blocking and checked after opening, so a file
// swapped between a check and the open cannot slip through. A missing file
// is errdef.ErrNotFound.
func Open(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s: %w", path, errdef.ErrNotFound)
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %s, not a regular file: %w", path, st.Mode().Type(), errdef.ErrInvalid)
	}
	return f, st.Size(), nil
}
