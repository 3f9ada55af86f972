package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/offkit/offkit/internal/verifyread"
)

// The feed's read-ahead: chunks of feedChunk bytes, at most feedChunks of
// them read and not yet packed, whatever the size of the sources.
const (
	feedChunk  = 256 << 10
	feedChunks = 4
)

// chunk is a piece of an entry's content, or (b nil) the end of an entry,
// with err saying why its bytes cannot be packed.
type chunk struct {
	b   []byte
	err error
}

// errStopped ends a feed whose packer has stopped.
var errStopped = errors.New("feed stopped")

// feed reads the content of the sources, in order, on a goroutine of its
// own, a few chunks ahead of the packer: reading and checking an entry
// overlaps packing the one before. Each entry ends with a chunk that says
// whether its bytes are the ones the manifest promises: a file is hashed as
// it is read and compared with the digest taken when it was listed; an
// image file's reader checks its bytes itself (images.File.Open), so they
// are hashed once.
type feed struct {
	chunks chan chunk
	free   chan []byte
	quit   chan struct{}
	done   chan struct{}
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

// next returns the next chunk; b nil ends the entry.
func (f *feed) next() chunk { return <-f.chunks }

// recycle gives back the buffer of a chunk once it is packed.
func (f *feed) recycle(b []byte) { f.free <- b[:0] }

func (f *feed) run(ctx context.Context, srcs []source) {
	defer close(f.done)
	for _, s := range srcs {
		err := f.read(ctx, s)
		if errors.Is(err, errStopped) || !f.send(chunk{err: err}) || err != nil {
			return
		}
	}
}

func (f *feed) send(c chunk) bool {
	select {
	case f.chunks <- c:
		return true
	case <-f.quit:
		return false
	}
}

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
		var b []byte
		select {
		case b = <-f.free:
		case <-f.quit:
			return errStopped
		}
		if b == nil {
			b = make([]byte, feedChunk)
		}
		k, err := io.ReadFull(r, b[:cap(b)])
		if k > 0 {
			n += int64(k)
			if !f.send(chunk{b: b[:k]}) {
				return errStopped
			}
		} else {
			f.free <- b
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
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
	return os.Open(s.file)
}
