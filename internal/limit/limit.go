// Package limit reads small documents (keys, signatures, state, manifests,
// configuration, HTTP bodies) whole, never more than a named bound: it
// reads max+1 bytes and fails past max, instead of truncating silently or
// sizing a buffer from a declared length (compare go-containerregistry's
// internal/limit).
package limit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unicode/utf8"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
)

// ReadAll reads r to its end. More than max bytes is errdef.ErrInvalid,
// naming name and the bound.
func ReadAll(r io.Reader, name string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over %d bytes: %w", name, max, errdef.ErrInvalid)
	}
	return b, nil
}

// ReadFile reads the file at path, at most max bytes. A missing file is
// errdef.ErrNotFound (and still fs.ErrNotExist); other errors of the file
// system are returned as they are. It reads what path names, a pipe too:
// for paths an operator gives (a key from a process substitution); a file
// of the site or of a tree read as input is read with ReadRegularFile or
// ReadFileIn.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	return readOpened(f, err, path, max)
}

// ReadRegularFile is ReadFile for a regular file (a symlink to one is
// followed): anything else, a named pipe above all, whose open would wait
// for a writer, is refused at once with an *os.PathError naming path and
// wrapping errdef.ErrInvalid (plainfile.OpenRegular).
func ReadRegularFile(path string, max int64) ([]byte, error) {
	f, _, err := plainfile.OpenRegular(path)
	return readOpened(f, err, path, max)
}

// ReadFileIn reads the regular file name inside r, at most max bytes, with
// ReadRegularFile's errors (plainfile.OpenRegularIn).
func ReadFileIn(r *os.Root, name string, max int64) ([]byte, error) {
	f, _, err := plainfile.OpenRegularIn(r, name)
	return readOpened(f, err, name, max)
}

func readOpened(f *os.File, err error, name string, max int64) ([]byte, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", err, errdef.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, name, max)
}

// Clip is s as a message quotes a value read from input or chosen by a
// client (a key id, a header, a path segment): at most max bytes of it,
// cut at the start of a UTF-8 sequence, with "…" marking the cut.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
