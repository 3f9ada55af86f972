package kitfile

import (
	"archive/tar"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/seekable"
)

// WriterOptions are the encoder settings of a kit, recorded in its manifest
// (compression.level and compression.frameSize). They never depend on the
// machine: Concurrency changes the speed, never the bytes.
type WriterOptions struct {
	Level       int // zstd level
	FrameSize   int // decompressed bytes per frame
	Concurrency int // 0 means GOMAXPROCS
}

// Writer writes a kit: a deterministic tar stream cut into seekable zstd
// frames. The head (WriteHead) ends its own frame(s); after it, frames end
// whenever FrameSize bytes have been buffered, and an entry of at least
// FrameSize/4 bytes starts a frame. Build and Sign both write through it,
// so a kit signed later is byte for byte the kit built with that key.
type Writer struct {
	zw        *seekable.Writer
	tw        *tar.Writer
	buf       []byte
	frameSize int
	mtime     time.Time
	closed    bool
}

// NewWriter returns a Writer of a kit whose entries are dated mtime (the
// manifest's createdAt) to w.
func NewWriter(w io.Writer, mtime time.Time, opts WriterOptions) (*Writer, error) {
	if opts.FrameSize <= 0 || opts.FrameSize > seekable.MaxFrameSize {
		return nil, fmt.Errorf("frame size %d not in 1..%d", opts.FrameSize, seekable.MaxFrameSize)
	}
	zw, err := seekable.NewWriter(w, seekable.WriterOptions{
		Level:       zstd.EncoderLevelFromZstd(opts.Level),
		Concurrency: opts.Concurrency,
		MaxFrame:    opts.FrameSize,
	})
	if err != nil {
		return nil, err
	}
	kw := &Writer{zw: zw, frameSize: opts.FrameSize, mtime: mtime.UTC()}
	kw.buf = zw.Buffer(opts.FrameSize)
	kw.tw = tar.NewWriter(frameSink{kw})
	return kw, nil
}

// frameSink receives the tar bytes and cuts frames.
type frameSink struct{ w *Writer }

func (s frameSink) Write(b []byte) (int, error) {
	p := s.w
	n := len(b)
	for len(b) > 0 {
		room := p.frameSize - len(p.buf)
		take := min(room, len(b))
		p.buf = append(p.buf, b[:take]...)
		b = b[take:]
		if len(p.buf) >= p.frameSize {
			if err := p.cut(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

func (p *Writer) cut() error {
	if len(p.buf) == 0 {
		return nil
	}
	if err := p.zw.WriteFrame(p.buf); err != nil {
		return err
	}
	p.buf = p.zw.Buffer(p.frameSize)
	return nil
}

// Sums is the SHA256SUMS file of a head: its size, then its bytes, written
// by WriteTo (manifest.SumsFile, or a bytes.Reader).
type Sums interface {
	io.WriterTo
	Size() int64
}

// WriteHead writes the head of the kit: the manifest, its signature (none
// for an unsigned kit: sig nil) and SHA256SUMS, and ends the frame. sums
// must write exactly its size.
func (p *Writer) WriteHead(manifest, sig []byte, sums Sums) error {
	for _, e := range []struct {
		name string
		b    []byte
	}{{ManifestPath, manifest}, {SignaturePath, sig}} {
		if e.b == nil && e.name == SignaturePath {
			continue
		}
		if err := p.begin(e.name, int64(len(e.b)), false); err != nil {
			return err
		}
		if _, err := p.tw.Write(e.b); err != nil {
			return fmt.Errorf("packing %s: %w", e.name, err)
		}
	}
	if err := p.begin(SumsPath, sums.Size(), false); err != nil {
		return err
	}
	if _, err := sums.WriteTo(p.tw); err != nil {
		return fmt.Errorf("packing %s: %w", SumsPath, err)
	}
	// archive/tar refuses a byte past the size; a byte short is caught
	// here.
	if err := p.flushFrame(); err != nil {
		return fmt.Errorf("packing %s: %w", SumsPath, err)
	}
	return nil
}

// WriteHeader starts a content entry of size bytes, whose bytes are then
// written with Write. An entry of at least a quarter of the frame size
// starts a frame.
func (p *Writer) WriteHeader(name string, size int64) error {
	return p.begin(name, size, true)
}

// Write writes content of the current entry; archive/tar refuses more than
// its size.
func (p *Writer) Write(b []byte) (int, error) { return p.tw.Write(b) }

func (p *Writer) begin(name string, size int64, mayCut bool) error {
	if mayCut && size >= int64(p.frameSize/4) {
		if err := p.flushFrame(); err != nil {
			return err
		}
	}
	if err := p.tw.WriteHeader(Header(name, size, p.mtime)); err != nil {
		return fmt.Errorf("writing tar header of %s: %w", name, err)
	}
	return nil
}

// flushFrame ends the current frame at an entry boundary.
func (p *Writer) flushFrame() error {
	if err := p.tw.Flush(); err != nil {
		return err
	}
	return p.cut()
}

// CopyFrames copies frames already compressed, read in order from src, as
// they are: the content of a kit being re-signed, after its new head. The
// frames must hold the rest of the tar stream, trailer included; Close then
// writes only the seek table.
func (p *Writer) CopyFrames(src io.Reader, frames []seekable.Frame) error {
	if err := p.flushFrame(); err != nil {
		return err
	}
	p.closed = true // the copied frames end the tar stream
	return p.zw.CopyFrames(src, frames)
}

// Close writes the tar trailer, the last frame and the seek table. It does
// not close the underlying writer, and may be called again (to stop the
// Writer's goroutines on an error path).
func (p *Writer) Close() error {
	if !p.closed {
		p.closed = true
		if err := p.tw.Close(); err != nil {
			p.zw.Close()
			return err
		}
		if err := p.cut(); err != nil {
			p.zw.Close()
			return err
		}
	}
	return p.zw.Close()
}
