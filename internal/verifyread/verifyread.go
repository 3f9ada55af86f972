// Package verifyread is the one reader of untrusted bytes that were
// declared by size and digest: a blob of an image, an entry of a kit, a
// file listed when the kit was planned, a manifest in a registry's store.
//
// A Reader returns at most the declared size, and io.EOF only when the
// bytes were exactly that many, with that digest, and the source had no
// byte more. Anything else ends the read with an *Error naming the path or
// digest and wrapping errdef.ErrDigestMismatch: a short read, a byte past
// the size, another digest. Modelled on oras-go's content.VerifyReader and
// go-containerregistry's internal/verify.
//
// Digests are "sha256:" and 64 lowercase hex digits, the only ones offkit
// stores.
package verifyread

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/offkit/offkit/internal/errdef"
)

// Problem says how bytes differ from what was declared.
type Problem int

const (
	Short    Problem = iota + 1 // fewer bytes than the size
	Long                        // a byte past the size
	Mismatch                    // the size is right, the digest is not
)

// Error reports bytes that are not the declared ones.
type Error struct {
	Name    string // path or digest of what was read ("": the caller names it)
	Problem Problem
	Size    int64  // declared
	Read    int64  // bytes read (up to the size)
	Digest  string // declared
	Got     string // digest of the bytes read, for Mismatch
}

func (e *Error) Error() string {
	var s string
	switch e.Problem {
	case Short:
		s = fmt.Sprintf("short: %d of %d bytes", e.Read, e.Size)
	case Long:
		s = fmt.Sprintf("more than the %d bytes declared", e.Size)
	default:
		s = fmt.Sprintf("%s, declared %s", e.Got, e.Digest)
	}
	if e.Name != "" {
		s = e.Name + ": " + s
	}
	return s + ": " + errdef.ErrDigestMismatch.Error()
}

// Unwrap makes every Error an errdef.ErrDigestMismatch.
func (e *Error) Unwrap() error { return errdef.ErrDigestMismatch }

// Reader reads declared bytes, checking them on the way.
type Reader struct {
	r      io.Reader
	name   string
	size   int64
	digest string
	h      hash.Hash
	n      int64
	end    error // set once the end has been reached
}

// New returns a Reader of the size bytes with the given digest that r
// should return; name (a path or digest) names them in errors.
func New(r io.Reader, name string, size int64, digest string) *Reader {
	return &Reader{r: r, name: name, size: size, digest: digest, h: sha256.New()}
}

// Read reads at most the declared size; see the package documentation for
// how it ends. An error of the source before the last byte is returned
// wrapped with the name.
func (v *Reader) Read(p []byte) (int, error) {
	if v.end != nil {
		return 0, v.end
	}
	if rest := v.size - v.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	if len(p) > 0 {
		n, err = v.r.Read(p)
		v.h.Write(p[:n])
		v.n += int64(n)
	}
	switch {
	case v.n == v.size:
		v.end = v.check()
		return n, v.end
	case err == io.EOF:
		v.end = &Error{Name: v.name, Problem: Short, Size: v.size, Read: v.n, Digest: v.digest}
		return n, v.end
	case err != nil && v.name == "":
		v.end = err
		return n, v.end
	case err != nil:
		v.end = fmt.Errorf("%s: %w", v.name, err)
		return n, v.end
	}
	return n, nil
}

// check ends a read of the declared size: one byte more, or another digest,
// is an Error. An error of the source after the last byte is not one (a
// source may check digests itself and fail only then): the digest decides.
func (v *Reader) check() error {
	var one [1]byte
	if extra, _ := io.ReadFull(v.r, one[:]); extra > 0 {
		return &Error{Name: v.name, Problem: Long, Size: v.size, Read: v.n, Digest: v.digest}
	}
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
		return &Error{Name: v.name, Problem: Mismatch, Size: v.size, Read: v.n, Digest: v.digest, Got: got}
	}
	return io.EOF
}

// N returns the number of bytes read so far.
func (v *Reader) N() int64 { return v.n }

// Verify reads what the caller left unread and returns nil only if the
// bytes were exactly the declared ones.
func (v *Reader) Verify() error {
	_, err := io.Copy(io.Discard, v)
	return err
}

// ReadAll reads and checks the size bytes with the given digest that r
// should return, refusing a size over max (errdef.ErrInvalid) before it
// reads anything: a buffer is never sized from a declared length alone.
func ReadAll(r io.Reader, name string, size int64, digest string, max int64) ([]byte, error) {
	if size < 0 || size > max {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d: %w", name, size, max, errdef.ErrInvalid)
	}
	b := make([]byte, 0, size)
	v := New(r, name, size, digest)
	for {
		n, err := v.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
