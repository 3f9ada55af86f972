package limit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
)

// A named pipe where a site's file should be is refused at once by
// ReadRegularFile and ReadFileIn, exit 11 naming it; ReadFile reads a pipe
// an operator gives (here with a writer), as a process substitution is.
func TestReadNamedPipe(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	fifotest.Replace(t, p)
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, read := range map[string]func() ([]byte, error){
		"ReadRegularFile": func() ([]byte, error) { return ReadRegularFile(p, 10) },
		"ReadFileIn":      func() ([]byte, error) { return ReadFileIn(r, "state.json", 10) },
	} {
		done := fifotest.Guard(t, p)
		_, err := read()
		done()
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "state.json: a named pipe, not a regular file") {
			t.Errorf("%s of a named pipe: %v", name, err)
		}
	}
	if _, err := ReadRegularFile(dir, 10); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "a folder, not a regular file") {
		t.Errorf("ReadRegularFile of a folder: %v", err)
	}

	wrote := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.Write([]byte("key"))
			w.Close()
		}
		wrote <- err
	}()
	b, err := ReadFile(p, 10)
	if err != nil || string(b) != "key" {
		t.Errorf("ReadFile of a pipe with a writer: %q, %v", b, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}
