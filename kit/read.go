package kit

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/manifest"
)

// Reader reads the entries of a kit in order, refusing anything that is not
// a safe regular file: links, devices, FIFOs, sparse files, unsafe or
// repeated names. It knows nothing of signatures; package verify decides
// what to trust.
type Reader struct {
	lim      *limitReader
	tr       *tar.Reader
	close    func()
	seen     map[string]string
	seekable bool
}

// NewReader reads a kit from raw, its compressed bytes. With frames (from
// seekable.ReadSeekTable) the frames are decoded on several goroutines;
// without, raw is read as any zstd stream. The decompressed stream is limited
// to limit bytes until SetLimit raises it.
func NewReader(raw io.Reader, frames []seekable.Frame, concurrency int, limit int64) (*Reader, error) {
	var src io.Reader
	var closer func()
	if frames != nil {
		fr := seekable.NewFrameReader(raw, frames, concurrency)
		src, closer = fr, func() { fr.Close() }
	} else {
		dec, err := seekable.NewDecoder(raw)
		if err != nil {
			return nil, err
		}
		src, closer = dec, dec.Close
	}
	lim := &limitReader{r: src, n: limit}
	return &Reader{
		lim:      lim,
		tr:       tar.NewReader(lim),
		close:    closer,
		seen:     map[string]string{},
		seekable: frames != nil,
	}, nil
}

// Seekable reports whether the frames are decoded in parallel.
func (r *Reader) Seekable() bool { return r.seekable }

// SetLimit sets how many decompressed bytes the whole stream may have.
func (r *Reader) SetLimit(n int64) { r.lim.n = n - r.lim.read }

// Close stops decoding.
func (r *Reader) Close() { r.close() }

// Next returns the next regular file entry, io.EOF at the end of the
// archive. Directory entries are checked and skipped.
func (r *Reader) Next() (*tar.Header, error) {
	for {
		hdr, err := r.tr.Next()
		if err != nil {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, streamError("reading tar header", err)
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
		}
		if err := manifest.CheckName(name); err != nil {
			return nil, fmt.Errorf("archive entry %q: %v: %w", hdr.Name, err, errdef.ErrInvalid)
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") || k == "linkpath" {
				return nil, fmt.Errorf("archive entry %q: PAX record %q is not allowed: %w", hdr.Name, k, errdef.ErrInvalid)
			}
		}
		low := strings.ToLower(name)
		if prev, ok := r.seen[low]; ok {
			if prev == name {
				return nil, fmt.Errorf("archive entry %q: duplicate entry: %w", hdr.Name, errdef.ErrInvalid)
			}
			return nil, fmt.Errorf("archive entry %q: collides with %q when case is ignored: %w", hdr.Name, prev, errdef.ErrInvalid)
		}
		r.seen[low] = name
		switch hdr.Typeflag {
		case tar.TypeReg:
			if hdr.Size < 0 {
				return nil, fmt.Errorf("archive entry %q: negative size: %w", hdr.Name, errdef.ErrInvalid)
			}
			return hdr, nil
		case tar.TypeDir:
			continue
		default:
			return nil, fmt.Errorf("archive entry %q: %s, only regular files are allowed in a kit: %w", hdr.Name, typeName(hdr.Typeflag), errdef.ErrInvalid)
		}
	}
}

// Read reads the content of the current entry.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		return n, streamError("reading entry", err)
	}
	return n, err
}

// Finish checks that nothing but zero padding follows the end of the
// archive, and that the compressed stream ends cleanly.
func (r *Reader) Finish() error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.lim.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("data after the end of the archive: %w", errdef.ErrInvalid)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return streamError("reading the end of the kit", err)
		}
	}
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeGNUSparse:
		return "a sparse file"
	}
	return fmt.Sprintf("type %q", t)
}

// ErrLimit reports a decompressed stream larger than the manifest declares.
var ErrLimit = errors.New("decompressed kit is larger than its manifest declares (zstd bomb?)")

// streamError classifies errors of the decompressing, untarring stream: all
// are invalid input (exit 11), except that a limit stays recognisable.
func streamError(what string, err error) error {
	switch {
	case errors.Is(err, errdef.ErrInvalid), errors.Is(err, errdef.ErrDigestMismatch):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: kit is truncated: %w", what, errdef.ErrInvalid)
	}
	return fmt.Errorf("%s: %v: %w", what, err, errdef.ErrInvalid)
}

type limitReader struct {
	r    io.Reader
	n    int64
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Tell a clean end from an overflow: one more byte is an overflow.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: %w", ErrLimit, errdef.ErrInvalid)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}
