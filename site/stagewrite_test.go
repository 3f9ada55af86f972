package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

// TestStageWriter: entries of every size reach the write function intact
// and in order; an entry whose bytes fail (its reader errs at the end, as a
// digest mismatch does) fails Entry and reaches the write function as an
// error, not as a short file; a write error is reported, naming the entry,
// by the next Entry and by wait.
func TestStageWriter(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]byte{}
	var abandoned []string
	w := newStageWriter(func(e manifest.Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			abandoned = append(abandoned, e.Path)
			return err
		}
		got[e.Path] = b
		return nil
	})
	sizes := []int{0, 1, stageBatch - 1, stageBatch, stageBatch + 1, 3*stageBatch + 7, (stageBatches + 3) * stageBatch}
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		e := manifest.Entry{Path: fmt.Sprintf("files/%02d", i), Size: int64(n)}
		if err := w.Entry(e, bytes.NewReader(data)); err != nil {
			t.Fatalf("Entry(%s): %v", e.Path, err)
		}
	}
	mismatch := errors.New("digest mismatch")
	bad := manifest.Entry{Path: "files/bad", Size: 3*stageBatch + 5}
	if err := w.Entry(bad, io.MultiReader(bytes.NewReader(make([]byte, bad.Size)), errReader{mismatch})); !errors.Is(err, mismatch) {
		t.Fatalf("Entry of a failing reader = %v, want its error", err)
	}
	long := manifest.Entry{Path: "files/long", Size: 10}
	if err := w.Entry(long, strings.NewReader("01234567890")); err == nil {
		t.Fatal("Entry of a reader with a byte past the size succeeded")
	}
	if err := w.wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	for i, n := range sizes {
		p := fmt.Sprintf("files/%02d", i)
		if b, ok := got[p]; !ok || len(b) != n || (n > 0 && (b[0] != byte(i+1) || b[n-1] != byte(i+1))) {
			t.Errorf("%s: got %d bytes (present %v), want %d", p, len(b), ok, n)
		}
	}
	for _, p := range []string{"files/bad", "files/long"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s failed, but was written as a file (abandoned: %v)", p, abandoned)
		}
	}

	full := errors.New("no space left on device")
	w = newStageWriter(func(e manifest.Entry, r io.Reader) error {
		io.Copy(io.Discard, r)
		if e.Path == "files/b" {
			return full
		}
		return nil
	})
	defer w.wait()
	var err error
	for _, p := range []string{"files/a", "files/b", "files/c", "files/d"} {
		if err = w.Entry(manifest.Entry{Path: p, Size: 1}, strings.NewReader("x")); err != nil {
			break
		}
	}
	if werr := w.wait(); !errors.Is(werr, full) {
		t.Fatalf("wait = %v, want the write error", werr)
	}
	var ee *kitfile.EntryError
	if werr := w.wait(); !errors.As(werr, &ee) || ee.Path != "files/b" {
		t.Fatalf("wait = %v, want an error naming files/b", werr)
	}
	if err != nil && !errors.Is(err, full) {
		t.Fatalf("Entry = %v, want nil or the write error", err)
	}
	// Once the writer has failed, every Entry reports it.
	if err := w.Entry(manifest.Entry{Path: "files/e", Size: 1}, strings.NewReader("x")); !errors.Is(err, full) {
		t.Fatalf("Entry after the failure = %v, want the write error", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
