package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/internal/verifyread"
)

// The feed's read-ahead: chunks of feedChunk bytes, at most feedChunks of
// them read and not yet packed, whatever the size of the sources.
const (
	feedChunk  = 256 << 10
	feedChunks = 4
)

// chunk is a piece of the feed's stream, or (err set) its end: io.EOF once
// every source has been read and checked, else why the source being read
// cannot be packed.
type chunk struct {
	b   []byte
	err error
}

// errStopped ends a feed whose packer has stopped.
var errStopped = errors.New("feed stopped")

// feed reads the content of the sources, in order, on a goroutine of its
// own, a few chunks ahead of the packer: reading and checking the sources
// overlaps packing them. The chunks carry the sources' bytes end to end (a
// chunk holds many small files, or a piece of a large one), so that the
// feed and the packer hand over one chunk per feedChunk bytes, not two per
// file; the packer cuts the stream by the entries' sizes (take).
//
// Every source is checked as it is read: a file is hashed and compared
// with the digest taken when it was listed; an image file's reader checks
// its bytes itself (images.File.Open), so they are hashed once. A source
// whose bytes are not the ones the manifest promises ends the feed with
// its error before any byte of the next source is sent, and the stream
// ends with io.EOF only once the last source has passed.
type feed struct {
	chunks chan chunk
	free   chan []byte
	quit   chan struct{}
	done   chan struct{}
	// The feed's goroutine fills fill; the packer takes cur apart, held
	// being the buffer to give back once it is used up.
	fill      []byte
	cur, held []byte
}

func startFeed(ctx context.Context, srcs []source) *feed {
	f := &feed{
		chunks: make(chan chunk, feedChunks),
		free:   make(chan []byte, feedChunks),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for range feedChunks {
		f.free <- nil // allocated on first use
	}
	go f.run(ctx, srcs)
	return f
}

// stop ends the feed and waits until its goroutine has closed what it had
// open. It is safe to call more than once.
func (f *feed) stop() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
	<-f.done
}

// take returns the next bytes of the stream, at most n, waiting for the
// next chunk when the current one is used up; the bytes are valid until
// the next call. Its error is the end of the stream: io.EOF if every
// source was read.
func (f *feed) take(n int64) ([]byte, error) {
	for len(f.cur) == 0 {
		if f.held != nil {
			f.free <- f.held[:0]
			f.held = nil
		}
		c := <-f.chunks
		if c.err != nil {
			return nil, c.err
		}
		f.cur, f.held = c.b, c.b
	}
	k := int(min(n, int64(len(f.cur))))
	b := f.cur[:k]
	f.cur = f.cur[k:]
	return b, nil
}

// end returns nil once the stream ends as it should: every byte taken and
// the last source checked.
func (f *feed) end() error {
	b, err := f.take(1)
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("packing: %d bytes past the last entry", len(b))
	}
}

func (f *feed) run(ctx context.Context, srcs []source) {
	defer close(f.done)
	for _, s := range srcs {
		if err := f.read(ctx, s); err != nil {
			if !errors.Is(err, errStopped) {
				f.send(chunk{err: err})
			}
			return
		}
	}
	if len(f.fill) > 0 && !f.send(chunk{b: f.fill}) {
		return
	}
	f.send(chunk{err: io.EOF})
}

func (f *feed) send(c chunk) bool {
	select {
	case f.chunks <- c:
		return true
	case <-f.quit:
		return false
	}
}

// read appends the bytes of s to the stream, checked.
func (f *feed) read(ctx context.Context, s source) error {
	rc, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	// An image file's reader checks its bytes itself; a file is checked
	// against the digest taken when it was listed.
	var r io.Reader = rc
	if s.image == nil {
		r = verifyread.New(rc, "source "+s.file, s.entry.Size, "sha256:"+s.entry.SHA256)
	}
	var n int64
	for {
		if len(f.fill) == cap(f.fill) {
			if f.fill != nil && !f.send(chunk{b: f.fill}) {
				return errStopped
			}
			select {
			case f.fill = <-f.free:
			case <-f.quit:
				return errStopped
			}
			if f.fill == nil {
				f.fill = make([]byte, 0, feedChunk)
			}
		}
		k, err := r.Read(f.fill[len(f.fill):cap(f.fill)])
		f.fill = f.fill[:len(f.fill)+k]
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("packing %s: %w", s.entry.Path, err)
		}
	}
	if n != s.entry.Size {
		return fmt.Errorf("packing %s: read %d bytes, expected %d (did the file change?)", s.entry.Path, n, s.entry.Size)
	}
	return nil
}

// open opens the content of s.
func (s source) open(ctx context.Context) (io.ReadCloser, error) {
	if s.image != nil {
		return s.image.Open(ctx)
	}
	if s.data != nil {
		return io.NopCloser(bytes.NewReader(s.data)), nil
	}
	// A file swapped for a named pipe since it was listed is refused, not
	// waited on.
	f, _, err := plainfile.OpenRegular(s.file)
	return f, err
}
