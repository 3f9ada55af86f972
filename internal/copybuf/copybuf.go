// Package copybuf copies with buffers taken from a pool, so that copying
// many small files allocates nothing per file.
//
// io.Copy allocates a new 32 KiB buffer on every call when neither side
// brings its own (an *os.File's ReadFrom and WriteTo fall back to io.Copy
// for anything but sockets and files): with tens of thousands of entries,
// that garbage is what drives the collector.
package copybuf

import (
	"io"
	"sync"
)

// Size is the size of the buffers, io.Copy's.
const Size = 32 << 10

// The buffers are all of one size, so whatever a collection leaves in the
// pool fits every caller.
var pool = sync.Pool{New: func() any { return new([Size]byte) }}

// Copy copies from src to dst until EOF or an error, as io.Copy does, with
// a pooled buffer. It never hands the copy to src's WriteTo or dst's
// ReadFrom, which may allocate their own buffer.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	b := pool.Get().(*[Size]byte)
	defer pool.Put(b)
	return io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, b[:])
}

type onlyReader struct{ io.Reader }

type onlyWriter struct{ io.Writer }
