// Package errdef holds the few sentinel errors that every offkit package wraps,
// and the exit code each one maps to on the command line (docs/exit-codes.md).
//
// Errors are wrapped with the path, field or digest at fault:
//
//	fmt.Errorf("entry %q: %w", path, errdef.ErrDigestMismatch)
//
// and tested with errors.Is, never ==.
package errdef

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
)

var (
	// ErrNotFound: a named file or object was not found (exit 1).
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: a checksum or size did not match (exit 2).
	ErrDigestMismatch = errors.New("checksum or size mismatch")
	// ErrSignature: a signature did not verify, or no trusted key signed it (exit 5).
	ErrSignature = errors.New("signature not verified")
	// ErrNotNewer: the version is not newer than the installed one (exit 8).
	ErrNotNewer = errors.New("version not newer than installed")
	// ErrExpired: the kit has expired (exit 9).
	ErrExpired = errors.New("kit expired")
	// ErrInvalid: the input is invalid: bad spec, unsafe archive entry, over a
	// limit, malformed JSON (exit 11).
	ErrInvalid = errors.New("invalid input")
	// ErrIO: a file could not be read or written: permission denied, disk
	// full, read-only file system, I/O error (exit 12). Errors from the
	// operating system map to 12 without wrapping it (see ExitCode).
	ErrIO = errors.New("could not read or write")
)

// Exit codes of the offkit command line.
const (
	ExitOK          = 0
	ExitNotFound    = 1
	ExitMismatch    = 2
	ExitSignature   = 5
	ExitNotNewer    = 8
	ExitExpired     = 9
	ExitInvalid     = 11
	ExitIO          = 12
	ExitCancelled   = 130 // SIGINT
	ExitTerminated  = 143 // SIGTERM
	exitUnspecified = 1
)

// ExitCode maps err to the documented exit code. An error that wraps none of
// the sentinels maps to 1.
//
// The offkit sentinels decide first; then an operating-system error anywhere
// in the chain that says the file system could not be read or written
// (EACCES, EPERM, ENOSPC, EDQUOT, EROFS, EIO) maps to 12, as ErrIO does.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitCancelled
	case errors.Is(err, ErrSignature):
		return ExitSignature
	case errors.Is(err, ErrDigestMismatch):
		return ExitMismatch
	case errors.Is(err, ErrInvalid):
		return ExitInvalid
	case errors.Is(err, ErrExpired):
		return ExitExpired
	case errors.Is(err, ErrNotNewer):
		return ExitNotNewer
	case errors.Is(err, ErrNotFound):
		return ExitNotFound
	case errors.Is(err, ErrIO), isIO(err):
		return ExitIO
	}
	return exitUnspecified
}

// ioErrnos are the system errors that mean "could not read or write".
var ioErrnos = []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO}

// isIO reports whether err's chain holds a system error of ioErrnos (as a
// syscall.Errno, or as fs.ErrPermission, which EACCES and EPERM match).
func isIO(err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	for _, e := range ioErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
