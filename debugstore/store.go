package debugstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/plainfile"
)

// The .build-id store of an installed generation: a kit's debug/ files are
// installed at GEN/debug/, so GEN/debug/.build-id/<aa>/<rest>.debug is the
// debug file of build id <aa><rest> and GEN/debug/.build-id/<aa>/<rest> its
// executable, the layout gdb (set debug-file-directory ROOT/current/debug)
// and elfutils (DEBUGINFOD-less lookups in a debug directory) read as is.

// Limits on the build ids that name files in the store.
const (
	// MinIDHex is the fewest hex digits of a build id looked up: 8 bytes,
	// the shortest in use (musl toolchains, --build-id=0x…).
	MinIDHex = 16
	// MaxIDHex is the most hex digits of a build id looked up:
	// MaxBuildIDBytes (64 bytes, a SHA-512).
	MaxIDHex = 2 * MaxBuildIDBytes
)

// StoreDir is the folder of an installed generation that holds the
// .build-id tree.
const StoreDir = "debug"

// ErrBadID is a build id that is not MinIDHex to MaxIDHex hex digits of
// whole bytes.
var ErrBadID = fmt.Errorf("not a build id (%d to %d hex digits, an even number): %w", MinIDHex, MaxIDHex, errdef.ErrInvalid)

// ParseID returns the build id s in lowercase: s must be an even number,
// MinIDHex to MaxIDHex, of hex digits; upper case folds to lower. Anything
// else wraps ErrBadID (errdef.ErrInvalid), quoting at most 80 bytes of s.
func ParseID(s string) (string, error) {
	if len(s) < MinIDHex || len(s) > MaxIDHex || len(s)%2 != 0 {
		return "", fmt.Errorf("%q (%d characters): %w", cut(s), len(s), ErrBadID)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			b[i] = c + 'a' - 'A'
		default:
			return "", fmt.Errorf("%q: %w", cut(s), ErrBadID)
		}
	}
	return string(b), nil
}

func cut(s string) string { return limit.Clip(s, 80) }

// DebugPath is the path of the debug file of the (parsed) build id id in
// a generation: debug/.build-id/<aa>/<rest>.debug.
func DebugPath(id string) string { return path.Join(StoreDir, ".build-id", id[:2], id[2:]+".debug") }

// ExecutablePath is the path of the executable of the (parsed) build id id
// in a generation: debug/.build-id/<aa>/<rest>.
func ExecutablePath(id string) string { return path.Join(StoreDir, ".build-id", id[:2], id[2:]) }

// Kind is what is looked up for a build id.
type Kind string

// The kinds of file of a build id.
const (
	KindDebuginfo  Kind = "debuginfo"
	KindExecutable Kind = "executable"
)

// Open opens the file of kind for the (parsed) build id id inside the
// generation gen: a regular file, never a link or anything else (the
// generation's files are what its kits installed; os.Root keeps every
// lookup inside it). A missing file is errdef.ErrNotFound; the returned
// name is its path inside the generation.
func Open(gen *os.Root, id string, kind Kind) (*os.File, fs.FileInfo, string, error) {
	name := DebugPath(id)
	if kind == KindExecutable {
		name = ExecutablePath(id)
	}
	// Opened without waiting: a named pipe put in the file's place must
	// not hold a request; a symlink is refused.
	f, st, err := plainfile.OpenRegularNoFollowIn(gen, name)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil, nil, name, fmt.Errorf("%s: %w", name, errdef.ErrNotFound)
	case errors.Is(err, errdef.ErrInvalid):
		return nil, nil, name, err
	case err != nil:
		return nil, nil, name, fmt.Errorf("%s: %w: %w", name, errdef.ErrIO, err)
	}
	return f, st, name, nil
}
