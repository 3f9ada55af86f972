package kitfile_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/offkit/offkit/kitfile"
)

// A kit's content written apart (CloseContent) and copied after a head
// written by another Writer (CopyFrames) is byte for byte the kit one
// Writer writes, whatever the frame cuts and the encoders' concurrency;
// a Close after CloseContent writes nothing more, and a second
// CloseContent is refused.
func TestContentWrittenApartIsTheSameKit(t *testing.T) {
	const frame = 64 << 10
	head := []byte(`{"manifest": true}`)
	sig := []byte("signature")
	sums := []byte("0000  files/a\n")
	entries := []struct {
		name string
		size int
	}{
		{"files/a", 10},          // small: shares the frame the head ends
		{"files/b", frame / 4},   // starts a frame
		{"files/c", 3*frame + 7}, // spans frames
		{"files/d", frame/4 - 1},
		{"files/e", 0},
		{"files/f", frame - 512}, // ends near a cut
	}
	data := func(i, n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte((j*(i+3))>>4) ^ byte(i)
		}
		return b
	}
	writeEntries := func(t *testing.T, kw *kitfile.Writer) {
		for i, e := range entries {
			if err := kw.WriteHeader(e.name, int64(e.size)); err != nil {
				t.Fatal(err)
			}
			if _, err := kw.Write(data(i, e.size)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mtime := time.Unix(1700000000, 0)
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprint("concurrency ", conc), func(t *testing.T) {
			opts := kitfile.WriterOptions{Level: 3, FrameSize: frame, Concurrency: conc}
			var one bytes.Buffer
			kw, err := kitfile.NewWriter(&one, mtime, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := kw.WriteHead(head, sig, bytes.NewReader(sums)); err != nil {
				t.Fatal(err)
			}
			writeEntries(t, kw)
			if err := kw.Close(); err != nil {
				t.Fatal(err)
			}

			var content bytes.Buffer
			cw, err := kitfile.NewWriter(&content, mtime, opts)
			if err != nil {
				t.Fatal(err)
			}
			writeEntries(t, cw)
			frames, err := cw.CloseContent()
			if err != nil {
				t.Fatal(err)
			}
			n := content.Len()
			if err := cw.Close(); err != nil || content.Len() != n {
				t.Fatalf("Close after CloseContent: %v, wrote %d bytes more", err, content.Len()-n)
			}
			if _, err := cw.CloseContent(); err == nil {
				t.Fatal("a second CloseContent was not refused")
			}
			var two bytes.Buffer
			hw, err := kitfile.NewWriter(&two, mtime, kitfile.WriterOptions{Level: 3, FrameSize: frame, Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := hw.WriteHead(head, sig, bytes.NewReader(sums)); err != nil {
				t.Fatal(err)
			}
			if err := hw.CopyFrames(bytes.NewReader(content.Bytes()), frames); err != nil {
				t.Fatal(err)
			}
			if err := hw.Close(); err != nil {
				t.Fatal(err)
			}
			if m := two.Len(); hw.Close() != nil || two.Len() != m {
				t.Fatal("a second Close wrote or failed")
			}
			if !bytes.Equal(one.Bytes(), two.Bytes()) {
				t.Fatalf("content written apart: %d bytes, one writer: %d bytes, not the same", two.Len(), one.Len())
			}
		})
	}
}
