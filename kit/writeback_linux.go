package kit

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the bytes [off, off+n)
// of f to disk now, without waiting, so that the fsync before the kit is
// renamed into place has little left to do.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
