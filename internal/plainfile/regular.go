package plainfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"golang.org/x/sys/unix"
)

// OpenRegular opens name for reading and refuses anything that is not a
// regular file: a folder, a named pipe (FIFO), a device or a socket. It
// follows symlinks, as os.Open does (a caller that must not follow
// them checks with Lstat or opens through an os.Root first). It returns the
// file and the fs.FileInfo of the one fstat(2) it made on the open
// descriptor, so that a caller can check the size without another system
// call, and so that what was checked is what is read: a file swapped
// between a stat and an open cannot slip through.
//
// The open is made with O_NONBLOCK, so that a named pipe put where a file
// was expected is refused at once: without it, open(2) of a FIFO waits,
// for ever, for a writer. Opening a device runs its driver's open, which
// O_NONBLOCK keeps from waiting too (a terminal without carrier, a tape).
//
// On a regular file O_NONBLOCK changes nothing on Linux, but OpenRegular
// clears it anyway before handing the descriptor to os.NewFile: os.NewFile
// tries a non-blocking descriptor with the runtime's poller (an
// epoll_ctl(2) that fails for a regular file), and the one fcntl(2) that
// clears the flag costs the same and leaves a file that reads exactly as
// os.Open's does, on every file system. In all: open, fstat, two fcntl.
//
// Errors are *os.PathError values with Op "open" naming the file: the
// open(2) error (fs.ErrNotExist, fs.ErrPermission, ... match as for
// os.Open), or, for a file of another type, an error that names the type
// and wraps errdef.ErrInvalid. A socket, which open(2) refuses with ENXIO,
// wraps both errdef.ErrInvalid and syscall.ENXIO.
func OpenRegular(name string) (*os.File, fs.FileInfo, error) {
	fd, err := openNonblock(name)
	if err == syscall.ENXIO {
		return nil, nil, refused(name, err)
	}
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	fi := &fileInfo{name: filepath.Base(name)}
	if err := ignoringEINTR(func() error { return syscall.Fstat(fd, &fi.sys) }); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if fi.sys.Mode&syscall.S_IFMT != syscall.S_IFREG {
		unix.Close(fd)
		return nil, nil, notRegular(name, fi.Mode())
	}
	// Clear O_NONBLOCK: the only file status flag set (O_RDONLY is the
	// access mode, O_CLOEXEC a descriptor flag, neither touched by F_SETFL).
	if err := ignoringEINTR(func() error { _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); return err }); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), fi, nil
}

// notRegular is the error of an open of name that found a file of mode
// m, not a regular file: an *os.PathError wrapping errdef.ErrInvalid.
func notRegular(name string, m fs.FileMode) error {
	return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("a %s, not a regular file: %w", TypeName(m), errdef.ErrInvalid)}
}

// refused is notRegular for an open(2) refused with err (ENXIO: a socket).
func refused(name string, err error) error {
	return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file (%w): %w", err, errdef.ErrInvalid)}
}

func openNonblock(name string) (int, error) {
	for {
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// TypeName names the type of a file that is not a regular file, for
// messages: "folder", "named pipe", "socket", "device", "symlink".
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "regular file"
	}
	return "file of unknown type"
}

// fileInfo is the fs.FileInfo of one fstat(2), filled as os.Stat fills its
// own; Sys returns the *syscall.Stat_t, as os's does.
type fileInfo struct {
	name string
	sys  syscall.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.sys.Size }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.sys.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.sys }

func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.sys.Mode & 0o777)
	switch fi.sys.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.sys.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.sys.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.sys.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Dir is what OpenRegularIn and OpenRegularNoFollowIn open a file
// through: an *os.Root, or a wrapper of one (a test that makes a call
// fail).
type Dir interface {
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
	Lstat(name string) (fs.FileInfo, error)
}

// OpenRegularIn is OpenRegular for the file name inside root: it opens
// through root.OpenFile (so nothing outside root is ever opened; symlinks
// inside root are followed, as os.Root does) with O_NONBLOCK, refuses
// anything that is not a regular file as OpenRegular does, and clears
// O_NONBLOCK on the file it returns. The FileInfo is that of the open
// file, from its one fstat(2).
func OpenRegularIn(root Dir, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if pe := (*os.PathError)(nil); errors.As(err, &pe) && pe.Err == syscall.ENXIO {
		return nil, nil, refused(name, pe.Err)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(name, fi.Mode())
	}
	if err == nil {
		err = clearNonblock(f)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// clearNonblock clears O_NONBLOCK, the only file status flag
// OpenRegularIn sets, on the regular file f.
func clearNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = ignoringEINTR(func() error { _, err := unix.FcntlInt(fd, unix.F_SETFL, 0); return err })
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "fcntl", Path: f.Name(), Err: ferr}
	}
	return nil
}

// OpenRegularNoFollowIn is OpenRegularIn for a file that must not be a
// symbolic link either (os.Root follows links that stay inside it). It
// looks at name with Lstat first, so that a link, a named pipe or a
// device is refused without opening it or what it points to, then opens
// name and checks that the file opened is the one Lstat found. Anything
// but a regular file is refused as OpenRegularIn refuses it
// (errdef.ErrInvalid, naming what is there: "symlink", "named pipe",
// ...), and comes with the FileInfo Lstat found, for a caller that
// reports it. A file replaced between the Lstat and the open is an
// *os.PathError naming name whose error is ErrChanged.
func OpenRegularNoFollowIn(root Dir, name string) (*os.File, fs.FileInfo, error) {
	lfi, err := root.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if !lfi.Mode().IsRegular() {
		return nil, lfi, notRegular(name, lfi.Mode())
	}
	f, fi, err := OpenRegularIn(root, name)
	switch {
	case errors.Is(err, errdef.ErrInvalid):
		// A regular file for Lstat, something else once opened.
		return nil, nil, &os.PathError{Op: "open", Path: name, Err: ErrChanged}
	case err != nil:
		return nil, nil, err
	case !os.SameFile(fi, lfi):
		f.Close()
		return nil, nil, &os.PathError{Op: "open", Path: name, Err: ErrChanged}
	}
	return f, fi, nil
}

// ErrChanged is the error of OpenRegularNoFollowIn when the file at a
// name is replaced while it is opened.
var ErrChanged = errors.New("changed while opened")
