package errdef

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestExitCodeIO(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO} {
		// As the os package returns them, wrapped once more by a caller.
		err := fmt.Errorf("install: %w", &fs.PathError{Op: "write", Path: "/site/x", Err: errno})
		if got := ExitCode(err); got != ExitIO {
			t.Errorf("%v: exit %d, want %d", err, got, ExitIO)
		}
		link := fmt.Errorf("publish: %w", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: errno})
		if got := ExitCode(link); got != ExitIO {
			t.Errorf("%v: exit %d, want %d", link, got, ExitIO)
		}
	}
	if got := ExitCode(fmt.Errorf("spec: %w", ErrIO)); got != ExitIO {
		t.Errorf("ErrIO: exit %d, want %d", got, ExitIO)
	}
}

// An offkit sentinel in the chain still decides, whatever system error sits
// beside it; a system error that is not about reading or writing keeps 1.
func TestExitCodeSentinelWins(t *testing.T) {
	eio := &fs.PathError{Op: "read", Path: "k", Err: syscall.EIO}
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("entry x: %w: %w", ErrDigestMismatch, eio), ExitMismatch},
		{fmt.Errorf("kit: %w: %w", ErrInvalid, eio), ExitInvalid},
		{fmt.Errorf("key: %w: %w", ErrNotFound, eio), ExitNotFound},
		{fmt.Errorf("sig: %w: %w", ErrSignature, eio), ExitSignature},
		{fmt.Errorf("stop: %w: %w", context.Canceled, eio), ExitCancelled},
		{&fs.PathError{Op: "open", Path: "k", Err: syscall.ENOENT}, ExitNotFound},
		{&fs.PathError{Op: "open", Path: "k/x", Err: syscall.ENOTDIR}, ExitNotFound},
		{&fs.PathError{Op: "open", Path: "k", Err: syscall.EINVAL}, 1},
		{nil, ExitOK},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.err, got, c.want)
		}
	}
}
