package kit

import (
	"archive/tar"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/seekable"
)

// Default encoder settings, recorded in every manifest.
const (
	DefaultLevel     = 3
	DefaultFrameSize = 4 << 20
	// MaxFrameSize bounds a spec's frame size.
	MaxFrameSize = 32 << 20
)

// The fixed paths at the head of every kit.
const (
	ManifestPath  = "offkit/manifest.json"
	SignaturePath = "offkit/manifest.json.sig"
	SumsPath      = "SHA256SUMS"
)

// packer writes a deterministic tar stream cut into seekable zstd frames.
// Frames end where the caller asks (Cut) and whenever frameSize bytes have
// been buffered; an entry of at least frameSize/4 bytes starts a frame.
type packer struct {
	zw        *seekable.Writer
	tw        *tar.Writer
	buf       []byte
	frameSize int
	mtime     time.Time
}

func newPacker(w io.Writer, mtime time.Time, level, frameSize, concurrency int) (*packer, error) {
	zw, err := seekable.NewWriter(w, seekable.WriterOptions{
		Level:       zstd.EncoderLevelFromZstd(level),
		Concurrency: concurrency,
	})
	if err != nil {
		return nil, err
	}
	p := &packer{zw: zw, frameSize: frameSize, mtime: mtime.UTC()}
	p.buf = zw.Buffer(frameSize)
	p.tw = tar.NewWriter(p)
	return p, nil
}

// Write buffers tar bytes, cutting a frame every frameSize bytes.
func (p *packer) Write(b []byte) (int, error) {
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

func (p *packer) cut() error {
	if len(p.buf) == 0 {
		return nil
	}
	if err := p.zw.WriteFrame(p.buf); err != nil {
		return err
	}
	p.buf = p.zw.Buffer(p.frameSize)
	return nil
}

// addHead writes an entry of the kit's head, which stays in the first frame
// unless it outgrows the frame size.
func (p *packer) addHead(name string, b []byte) error {
	if err := p.begin(name, int64(len(b)), false); err != nil {
		return err
	}
	if _, err := p.tw.Write(b); err != nil {
		return fmt.Errorf("packing %s: %w", name, err)
	}
	return nil
}

// addFed writes one regular file entry of size bytes, the next entry of f.
// It fails if f ends the entry with an error, or with more or fewer bytes.
func (p *packer) addFed(name string, size int64, f *feed) error {
	if err := p.begin(name, size, true); err != nil {
		return err
	}
	var n int64
	for {
		c := f.next()
		if c.b == nil {
			if c.err != nil {
				return c.err
			}
			break
		}
		if n+int64(len(c.b)) <= size {
			if _, err := p.tw.Write(c.b); err != nil {
				return fmt.Errorf("packing %s: %w", name, err)
			}
		}
		n += int64(len(c.b))
		f.recycle(c.b)
	}
	if n != size {
		return fmt.Errorf("packing %s: read %d bytes, expected %d (did the file change?)", name, n, size)
	}
	return nil
}

// begin writes the tar header of an entry of size bytes. A content entry
// (mayCut) of at least a quarter of the frame size starts a frame.
func (p *packer) begin(name string, size int64, mayCut bool) error {
	if mayCut && size >= int64(p.frameSize/4) {
		if err := p.tw.Flush(); err != nil {
			return err
		}
		if err := p.cut(); err != nil {
			return err
		}
	}
	if err := p.tw.WriteHeader(Header(name, size, p.mtime)); err != nil {
		return fmt.Errorf("writing tar header of %s: %w", name, err)
	}
	return nil
}

// Header returns the tar header of every kit entry: a regular file, mode
// 0644, owned by uid and gid 0 with empty owner names, modified at the kit's
// createdAt (whole seconds, UTC), nothing else. archive/tar's writer turns it
// into USTAR, or PAX with only a path record when the name needs it; the
// reader refuses any header that does not encode to the same bytes.
func Header(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  mtime.UTC().Truncate(time.Second),
	}
}

// flushFrame ends the current frame at an entry boundary.
func (p *packer) flushFrame() error {
	if err := p.tw.Flush(); err != nil {
		return err
	}
	return p.cut()
}

// close writes the tar trailer, the last frame and the seek table.
func (p *packer) close() error {
	if err := p.tw.Close(); err != nil {
		return err
	}
	if err := p.cut(); err != nil {
		return err
	}
	return p.zw.Close()
}
