package kitfile

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/manifest"
)

// Reader reads the entries of a kit in order, refusing anything that is not
// a safe regular file: links, devices, FIFOs, sparse files, unsafe or
// repeated names (CheckedInOrder leaves the last to a caller that checks
// every name against a manifest). It knows nothing of signatures; package
// verify decides what to trust.
//
// Every header must be exactly what the kit writer produces (Header): the
// bytes the tar reader consumes between two entries (the previous entry's
// zero padding and the next entry's header blocks) are compared with the
// canonical encoding, so a setuid mode, an owner, extended attributes, extra
// PAX records or data hidden in padding or unused header fields are refused,
// although the manifest's sha256s only cover the entries' contents. Every
// entry has the modification time of the first (ModTime); the verifier
// checks it against the manifest's createdAt.
type Reader struct {
	lim      *limitReader
	rec      *recorder
	tr       *tar.Reader
	close    func()
	release  func()
	seen     map[string]string
	seekable bool
	mtime    time.Time
	size     int64 // of the current entry
	entries  int
	canon    bytes.Buffer
}

// NewReader reads a kit from raw, its compressed bytes. With frames (from
// seekable.ReadSeekTable) the frames are decoded on several goroutines;
// without, raw is read as any zstd stream. The decompressed stream is limited
// to limit bytes until SetLimit raises it, and until then only the frames
// that start within those bytes are read and decoded: an untrusted head
// cannot make the reader decode ahead.
func NewReader(raw io.Reader, frames []seekable.Frame, concurrency int, limit int64) (*Reader, error) {
	var src io.Reader
	var closer, release func()
	if frames != nil {
		// Nothing past the head is decoded before the caller trusts it.
		fr := seekable.NewFrameReader(raw, frames, concurrency, limit)
		src, closer, release = fr, func() { fr.Close() }, fr.Release
	} else {
		dec, err := seekable.NewDecoder(raw)
		if err != nil {
			return nil, err
		}
		src, closer, release = dec, dec.Close, func() {}
	}
	r := newTarReader(src, limit)
	r.close, r.release, r.seekable = closer, release, frames != nil
	return r, nil
}

// NewDecodedReader reads a kit from its decompressed tar stream (a
// seekable.RandomReader's, read from the start), with the same checks and
// limit as NewReader.
func NewDecodedReader(tarStream io.Reader, limit int64) *Reader {
	return newTarReader(tarStream, limit)
}

func newTarReader(src io.Reader, limit int64) *Reader {
	lim := &limitReader{r: src, n: limit}
	rec := &recorder{r: lim}
	return &Reader{
		lim:     lim,
		rec:     rec,
		tr:      tar.NewReader(rec),
		close:   func() {},
		release: func() {},
		seen:    map[string]string{},
	}
}

// Seekable reports whether the frames are decoded in parallel.
func (r *Reader) Seekable() bool { return r.seekable }

// SetLimit sets how many decompressed bytes the whole stream may have, once
// the caller trusts the head, and lets the frames past the first limit
// bytes (which NewReader holds back) be decoded ahead in parallel.
func (r *Reader) SetLimit(n int64) {
	r.lim.n = n - r.lim.read
	r.release()
}

// CheckedInOrder tells the Reader that its caller checks the name of every
// entry it returns, the head's by their fixed names and the content's
// against a manifest's entries in their order, and fails on any other name.
// A manifest's entries are sorted and unique, also under manifest.Fold, and
// the head's names are none of theirs, so a repeated or colliding name fails
// that check. The Reader then stops keeping the set of the names it has
// read, which it keeps only to refuse such names (about 130 bytes a name:
// 7 MB for a kit of 50,000 entries). Call it before the first Next.
func (r *Reader) CheckedInOrder() { r.seen = nil }

// Close stops decoding.
func (r *Reader) Close() { r.close() }

// ModTime returns the modification time every entry has (zero before the
// first entry).
func (r *Reader) ModTime() time.Time { return r.mtime }

// MaxHeaderBytes bounds the tar bytes of one entry's header: a PAX header
// carrying a path of manifest.MaxPathLen bytes and the USTAR block.
const MaxHeaderBytes = 6 * 512

// Next returns the next regular file entry, io.EOF at the end of the
// archive. Only regular files are allowed, with canonical headers.
func (r *Reader) Next() (*tar.Header, error) {
	// What the caller left of the current entry is not part of the header.
	if _, err := io.Copy(io.Discard, r.tr); err != nil {
		return nil, streamError("reading entry", err)
	}
	r.rec.start(MaxHeaderBytes + 512)
	hdr, err := r.tr.Next()
	raw, over := r.rec.stop()
	if err != nil {
		if over {
			return nil, fmt.Errorf("archive entry %d: header over %d bytes: %w", r.entries+1, MaxHeaderBytes, errdef.ErrInvalid)
		}
		if err == io.EOF {
			if !allZero(raw) {
				return nil, fmt.Errorf("archive end: data in the padding or trailer: %w", errdef.ErrInvalid)
			}
			return nil, io.EOF
		}
		return nil, streamError("reading tar header", err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, entryErrorf(hdr.Name, "%s, only regular files are allowed in a kit: %w", typeName(hdr.Typeflag), errdef.ErrInvalid)
	}
	name := hdr.Name
	if err := manifest.CheckName(name); err != nil {
		return nil, entryErrorf(hdr.Name, "%w: %w", err, errdef.ErrInvalid)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") || k == "linkpath" {
			return nil, entryErrorf(hdr.Name, "PAX record %q is not allowed: %w", k, errdef.ErrInvalid)
		}
	}
	if r.seen != nil {
		key := manifest.Fold(name)
		if prev, ok := r.seen[key]; ok {
			if prev == name {
				return nil, entryErrorf(hdr.Name, "duplicate entry: %w", errdef.ErrInvalid)
			}
			return nil, entryErrorf(hdr.Name, "collides with %q when case and Unicode normalisation are ignored: %w", prev, errdef.ErrInvalid)
		}
		r.seen[key] = name
	}
	if hdr.Size < 0 {
		return nil, entryErrorf(hdr.Name, "negative size: %w", errdef.ErrInvalid)
	}
	if r.entries == 0 {
		r.mtime = hdr.ModTime.UTC().Truncate(time.Second)
	}
	if err := r.checkCanonical(hdr, raw); err != nil {
		return nil, err
	}
	r.entries++
	r.size = hdr.Size
	return hdr, nil
}

// checkCanonical compares the bytes consumed for hdr (the previous entry's
// padding, then the header blocks) with what the kit writer produces.
func (r *Reader) checkCanonical(hdr *tar.Header, raw []byte) error {
	pad := int((512 - r.size%512) % 512)
	if r.entries == 0 {
		pad = 0
	}
	if len(raw) < pad || !allZero(raw[:pad]) {
		return entryErrorf(hdr.Name, "data in the padding before it: %w", errdef.ErrInvalid)
	}
	r.canon.Reset()
	tw := tar.NewWriter(&r.canon)
	if err := tw.WriteHeader(Header(hdr.Name, hdr.Size, r.mtime)); err != nil {
		return entryErrorf(hdr.Name, "%w: %w", err, errdef.ErrInvalid)
	}
	if !bytes.Equal(raw[pad:], r.canon.Bytes()) {
		return entryErrorf(hdr.Name, "header is not what offkit writes (only regular files, mode 0644, owner 0:0 without names, one modification time, no extended attributes or other PAX records): %w", errdef.ErrInvalid)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// recorder keeps a copy of the bytes read while recording, up to a bound.
type recorder struct {
	r    io.Reader
	on   bool
	max  int
	buf  []byte
	over bool
}

func (c *recorder) start(max int) { c.on, c.max, c.buf, c.over = true, max, c.buf[:0], false }

func (c *recorder) stop() ([]byte, bool) {
	c.on = false
	return c.buf, c.over
}

func (c *recorder) Read(p []byte) (int, error) {
	if c.on && len(c.buf)+len(p) > c.max {
		// archive/tar reads a PAX header's records whole (up to 1 MiB):
		// refuse before it does.
		if room := c.max - len(c.buf); room > 0 {
			p = p[:room]
		} else {
			c.over = true
			return 0, fmt.Errorf("tar header over %d bytes: %w", MaxHeaderBytes, errdef.ErrInvalid)
		}
	}
	n, err := c.r.Read(p)
	if c.on {
		c.buf = append(c.buf, p[:n]...)
	}
	return n, err
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
	case tar.TypeDir:
		return "a directory"
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

// streamError classifies errors of the decompressing, untarring stream:
// damaged compressed bytes (a frame that fails its checksum or does not
// decode, seekable.DamageError) are errdef.ErrDigestMismatch (exit 2);
// everything else is invalid input (exit 11), a limit staying recognisable.
func streamError(what string, err error) error {
	var damage *seekable.DamageError
	switch {
	case errors.As(err, &damage):
		return fmt.Errorf("%s: %w: %w", what, err, errdef.ErrDigestMismatch)
	case errors.Is(err, errdef.ErrInvalid), errors.Is(err, errdef.ErrDigestMismatch):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: kit is truncated: %w", what, errdef.ErrInvalid)
	}
	return fmt.Errorf("%s: %w: %w", what, err, errdef.ErrInvalid)
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
