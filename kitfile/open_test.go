package kitfile_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/kitfile"
)

// TestOpenRefusesWhatIsNotAFile: a named pipe, a socket or a folder where
// the kit was is refused at once as invalid (exit 11), naming the path and
// what is there; a missing kit is not found (exit 1); a kit is opened with
// its size.
func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.kit.tar.zst")
	fifotest.Replace(t, fifo)
	sock := filepath.Join(dir, "sock.kit.tar.zst")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct{ path, kind string }{
		{fifo, "named pipe"},
		{sock, "not a regular file"},
		{dir, "folder"},
	} {
		done := fifotest.Guard(t, c.path)
		f, _, err := kitfile.Open(c.path)
		done()
		if err == nil {
			f.Close()
			t.Errorf("%s: opened", c.path)
			continue
		}
		if !errors.Is(err, errdef.ErrInvalid) || errdef.ExitCode(err) != errdef.ExitInvalid ||
			!strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.kind) {
			t.Errorf("%s: %v (exit %d), want exit %d naming the path and %q", c.path, err, errdef.ExitCode(err), errdef.ExitInvalid, c.kind)
		}
	}
	missing := filepath.Join(dir, "missing.kit.tar.zst")
	if _, _, err := kitfile.Open(missing); !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing kit: %v", err)
	}
	kit := filepath.Join(dir, "a.kit.tar.zst")
	os.WriteFile(kit, []byte("12345"), 0o644)
	f, size, err := kitfile.Open(kit)
	if err != nil || size != 5 {
		t.Fatalf("kit: size %d, %v", size, err)
	}
	f.Close()
}
