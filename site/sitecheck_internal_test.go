package site

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// A file that cannot be read is an error of the check (exit 12), not a
// mismatch: the check cannot say whether its bytes match. A path that is
// no file of the tree (a folder replaced by a file) is a mismatch.
func TestCheckFileErrors(t *testing.T) {
	want := record{size: 1, sha256: strings.Repeat("0", 64)}
	for _, c := range []struct {
		err  error
		code int
		got  string
	}{
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, errdef.ExitIO, ""},
		{fmt.Errorf("read x: %w", syscall.EIO), errdef.ExitIO, ""},
		{&fs.PathError{Op: "lstat", Path: "x", Err: syscall.ENOTDIR}, errdef.ExitOK, "not a directory"},
		{&fs.PathError{Op: "lstat", Path: "x", Err: syscall.ENOENT}, errdef.ExitOK, "missing"},
	} {
		_, got, err := checkFile(func() (*os.File, fs.FileInfo, error) { return nil, nil, c.err }, want)
		if errdef.ExitCode(err) != c.code || !strings.Contains(got, c.got) || (c.got == "") != (got == "") {
			t.Errorf("%v: got %q, err %v (exit %d), want %q exit %d", c.err, got, err, errdef.ExitCode(err), c.got, c.code)
		}
	}
}
