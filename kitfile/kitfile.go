// Package kitfile reads and writes the kit file, NAME-VERSION.kit.tar.zst,
// as docs/kit-format.md describes it. It is the format only: collecting
// sources is package kit's job, deciding what to trust is package verify's.
//
// A kit is one tar stream cut into independent zstd frames followed by a
// seek table (internal/seekable). The tar starts with the head, in its own
// frame(s): ManifestPath, SignaturePath (absent in an unsigned kit), then
// SumsPath; the content entries follow, sorted by path. Every entry is a
// regular file with the header Header gives: mode 0644, uid and gid 0
// without names, the kit's createdAt (whole seconds, UTC) as modification
// time, a PAX path record only when the name needs it, nothing else.
//
// Limits on what is read: the manifest is at most manifest.MaxManifestSize
// bytes, the signature sign.MaxSignatureSize, one entry's tar header
// MaxHeaderBytes; the decompressed stream is bounded by the caller (the
// sizes the manifest declares), past which reading fails with ErrLimit.
// Links, devices, FIFOs, sparse files, unsafe, repeated or colliding names,
// and any header that is not byte for byte the canonical one are refused
// with errdef.ErrInvalid.
package kitfile

import (
	"archive/tar"
	"fmt"
	"time"
)

// The fixed paths at the head of every kit.
const (
	ManifestPath  = "offkit/manifest.json"
	SignaturePath = "offkit/manifest.json.sig"
	SumsPath      = "SHA256SUMS"
)

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

// EntryError is a problem with one entry of a kit: its path and the cause,
// which wraps the errdef sentinel that says what kind of problem it is.
// The reader's refusals of an entry, and verify's, are EntryErrors
// (compare golang.org/x/mod/zip's FileError).
type EntryError struct {
	Path string
	Err  error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %q: %v", e.Path, e.Err) }

func (e *EntryError) Unwrap() error { return e.Err }

// entryErrorf returns an *EntryError for path, its cause formatted.
func entryErrorf(path, format string, args ...any) error {
	return &EntryError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Span returns the tar bytes of an entry of size bytes named name: its
// header blocks as Header encodes them, its data and the padding to the next
// 512-byte block. A kit's entries follow each other, so their offsets in
// the decompressed stream are known from the manifest alone.
func Span(name string, size int64, mtime time.Time) int64 {
	var n countWriter
	tw := tar.NewWriter(&n)
	if tw.WriteHeader(Header(name, size, mtime)) != nil {
		return 0
	}
	return int64(n) + (size+511)/512*512
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
