package kitfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
)

// Open opens the kit (or signature) file at path for reading and returns it
// with its size. Anything but a regular file (a FIFO, a socket, a device, a
// folder) is refused at once with errdef.ErrInvalid, naming path and what
// is there, without waiting for a writer (plainfile.OpenRegular: the file
// is opened non-blocking and checked on the open descriptor, so a file
// swapped between a check and the open cannot slip through). A missing
// file is errdef.ErrNotFound.
func Open(path string) (*os.File, int64, error) {
	f, st, err := plainfile.OpenRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s: %w", path, errdef.ErrNotFound)
		}
		return nil, 0, err
	}
	return f, st.Size(), nil
}
