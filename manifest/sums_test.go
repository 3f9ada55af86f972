package manifest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// SumsFile writes, a piece at a time, exactly the bytes of SHA256SUMS, of
// the size it says: entries the base kit carries have no line, and a file
// of many entries spans many writes.
func TestSumsFileIsSHA256SUMS(t *testing.T) {
	m := &Manifest{}
	for i := range 3000 {
		m.Entries = append(m.Entries, Entry{
			Path:   fmt.Sprintf("files/%s/%05d", strings.Repeat("d", i%300), i),
			SHA256: fmt.Sprintf("%064x", i),
			InBase: i%7 == 3,
		})
	}
	want := m.SHA256SUMS()
	if len(want) < 256<<10 || bytes.Contains(want, []byte(fmt.Sprintf("%064x", 3))) {
		t.Fatalf("test manifest: %d bytes of sums, or an inBase entry listed", len(want))
	}
	f := m.SumsFile()
	var got bytes.Buffer
	n, err := f.WriteTo(&got)
	if err != nil || n != int64(len(want)) || f.Size() != n || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo = %d, %v; Size %d; equal %v (want %d bytes)", n, err, f.Size(), bytes.Equal(got.Bytes(), want), len(want))
	}
	// A writer's error ends the writing, with it.
	w := &limitedWriter{left: 100 << 10}
	if _, err := f.WriteTo(w); err == nil || w.left < 0 {
		t.Fatalf("WriteTo a failing writer: %v (left %d)", err, w.left)
	}
}

type limitedWriter struct{ left int }

func (w *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, fmt.Errorf("full")
	}
	w.left -= len(p)
	return len(p), nil
}
