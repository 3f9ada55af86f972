package seekable

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"
)

// TestFrameReaderReusesBuffersAcrossCollections: a FrameReader decodes a
// long stream with a fixed set of buffers, even when the collector runs
// between frames (as it does under a soft memory limit), so its garbage
// does not grow with the number of frames.
func TestFrameReaderReusesBuffersAcrossCollections(t *testing.T) {
	const frameSize, n = 256 << 10, 64
	data := testData(n * frameSize)
	z := frames(t, data, frameSize, 2)
	fs, err := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	fr := NewFrameReader(bytes.NewReader(z), fs, 2, -1)
	h := sha256.New()
	buf := make([]byte, frameSize)
	for {
		k, err := io.ReadFull(fr, buf)
		h.Write(buf[:k])
		runtime.GC()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fr.Close()
	runtime.ReadMemStats(&ms1)
	if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Fatal("decoded bytes differ")
	}
	// Buffers for every frame would be 2 × 64 × 256 KiB; the reader's
	// own are 2 × 5 (concurrency + 3), plus the decoders' state.
	if got := ms1.TotalAlloc - ms0.TotalAlloc; got > n*frameSize/2 {
		t.Errorf("decoding %d frames of %d KiB allocated %d KiB", n, frameSize>>10, got>>10)
	}
}
