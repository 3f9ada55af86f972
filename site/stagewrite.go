package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// The staging writer's buffers: stageBatches buffers of stageBatch bytes
// read and not yet written, whatever the size of the kit.
const (
	stageBatch   = 256 << 10
	stageBatches = 8
)

// errEntryAbandoned ends the write of an entry whose bytes stopped coming
// (its verification failed); the staging folder it was written into is
// removed.
var errEntryAbandoned = errors.New("entry abandoned: its bytes did not verify")

// batch is one buffer on its way to the staging writer: whole small
// entries, or one piece of a larger one.
type batch struct {
	b    []byte
	segs []seg
}

// seg is one entry's bytes in a batch, b[start:end].
type seg struct {
	e           manifest.Entry
	start, end  int
	last, abort bool
}

// stageWriter writes entries into staging on a goroutine of its own, so
// that creating and writing files (most of an install's system time)
// overlaps decoding and hashing the next entries. The verifying goroutine
// hands it the bytes in batches (many small entries in one, to wake the
// writer once for all of them; a larger entry in pieces of its own), from
// a fixed set of buffers: its memory is bounded whatever the kit. A write
// error is reported by the next entry handed to it, and by wait; nothing
// written is visible before the install commits, so bytes that later fail
// their digest only reach staging, which a failed install removes.
type stageWriter struct {
	write   func(e manifest.Entry, r io.Reader) error
	batches chan *batch
	free    chan *batch
	cur     *batch // being filled with small entries
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error
}

func newStageWriter(write func(e manifest.Entry, r io.Reader) error) *stageWriter {
	w := &stageWriter{
		write:   write,
		batches: make(chan *batch, stageBatches),
		free:    make(chan *batch, stageBatches),
		done:    make(chan struct{}),
	}
	for range stageBatches {
		w.free <- &batch{}
	}
	go w.run()
	return w
}

func (w *stageWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *stageWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// take returns a free, empty batch, waiting for one.
func (w *stageWriter) take() *batch {
	b := <-w.free
	if b.b == nil {
		b.b = make([]byte, 0, stageBatch)
	}
	b.b, b.segs = b.b[:0], b.segs[:0]
	return b
}

// flush sends the batch being filled.
func (w *stageWriter) flush() {
	if w.cur != nil {
		w.batches <- w.cur
		w.cur = nil
	}
}

// Entry hands the e.Size bytes of r to the writer, then reads r to its end
// (where a verifying reader reports a mismatch).
func (w *stageWriter) Entry(e manifest.Entry, r io.Reader) error {
	if err := w.failed(); err != nil {
		return err
	}
	if w.cur != nil && int64(cap(w.cur.b)-len(w.cur.b)) < e.Size {
		w.flush()
	}
	if e.Size <= stageBatch {
		if w.cur == nil {
			w.cur = w.take()
		}
		b := w.cur
		start := len(b.b)
		b.b = b.b[:start+int(e.Size)]
		if err := readAll(r, b.b[start:], e.Size); err != nil {
			b.b = b.b[:start]
			return err
		}
		b.segs = append(b.segs, seg{e: e, start: start, end: len(b.b), last: true})
		if len(b.b) == cap(b.b) {
			w.flush()
		}
		return nil
	}
	// A larger entry: pieces of their own.
	left := e.Size
	for {
		b := w.take()
		n := min(left, int64(cap(b.b)))
		b.b = b.b[:n]
		var err error
		if _, err = io.ReadFull(r, b.b); err == nil && left == n {
			err = readAll(r, nil, e.Size)
		}
		left -= n
		if err != nil {
			b.b = b.b[:0]
			b.segs = append(b.segs, seg{e: e, last: true, abort: true})
			w.batches <- b
			return err
		}
		b.segs = append(b.segs, seg{e: e, end: int(n), last: left == 0})
		w.batches <- b
		if left == 0 {
			return nil
		}
	}
}

// readAll fills p from r and then reads r to its end, which must follow:
// a verifying reader reports a mismatch there.
func readAll(r io.Reader, p []byte, size int64) error {
	if _, err := io.ReadFull(r, p); err != nil {
		return err
	}
	var one [1]byte
	switch k, err := r.Read(one[:]); {
	case k != 0:
		return fmt.Errorf("more than %d bytes", size)
	case err != io.EOF:
		return err
	}
	return nil
}

// wait lets the writer finish and returns its first error.
func (w *stageWriter) wait() error {
	w.once.Do(func() {
		w.flush()
		close(w.batches)
	})
	<-w.done
	return w.failed()
}

func (w *stageWriter) run() {
	defer close(w.done)
	for b := range w.batches {
		if len(b.segs) == 1 && !b.segs[0].last {
			// The first piece of a larger entry: the reader takes the
			// pieces that follow, and gives back their buffers.
			r := &pieceReader{w: w, cur: b}
			w.one(b.segs[0].e, r)
			r.drain()
			continue
		}
		for _, s := range b.segs {
			if s.abort {
				continue
			}
			w.one(s.e, bytes.NewReader(b.b[s.start:s.end]))
		}
		w.free <- b
	}
}

// one writes one entry unless the writer has failed.
func (w *stageWriter) one(e manifest.Entry, r io.Reader) {
	if w.failed() != nil {
		return
	}
	if err := w.write(e, r); err != nil && !errors.Is(err, errEntryAbandoned) {
		w.fail(&kitfile.EntryError{Path: e.Path, Err: err})
	}
}

// pieceReader reads the pieces of one larger entry, a batch each.
type pieceReader struct {
	w           *stageWriter
	cur         *batch // nil once done
	off         int
	done, abort bool
}

func (r *pieceReader) Read(p []byte) (int, error) {
	for !r.done && r.off == len(r.cur.b) {
		r.next()
	}
	if r.done {
		if r.abort {
			return 0, errEntryAbandoned
		}
		return 0, io.EOF
	}
	n := copy(p, r.cur.b[r.off:])
	r.off += n
	return n, nil
}

// next takes the entry's next piece, giving back the current one's
// buffer; at the entry's last piece it sets done instead.
func (r *pieceReader) next() {
	if s := r.cur.segs[0]; s.last {
		r.done, r.abort = true, s.abort
		r.w.free <- r.cur
		r.cur = nil
		return
	}
	r.w.free <- r.cur
	r.cur = <-r.w.batches
	r.off = 0
}

// drain consumes what the write left of the entry.
func (r *pieceReader) drain() {
	for !r.done {
		r.next()
	}
}
