//go:build !linux

package kit

import "os"

// startWriteback does nothing where sync_file_range is missing: the fsync
// before the rename writes everything.
func startWriteback(f *os.File, off, n int64) {}
