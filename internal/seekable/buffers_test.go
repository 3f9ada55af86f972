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
	// own are 3 decoded (concurrency + 1) and 2 compressed (concurrency),
	// plus the decoders' state.
	if got := ms1.TotalAlloc - ms0.TotalAlloc; got > n*frameSize/2 {
		t.Errorf("decoding %d frames of %d KiB allocated %d KiB", n, frameSize>>10, got>>10)
	}
}

// TestFrameReaderBoundsFramesInFlight: however slowly the bytes are read,
// a FrameReader decodes into at most concurrency+1 buffers (the frame
// being read from and one decoding on each goroutine): it does not read
// ahead of its consumer beyond that.
func TestFrameReaderBoundsFramesInFlight(t *testing.T) {
	const frameSize, n, conc = 64 << 10, 32, 2
	data := testData(n * frameSize)
	z := frames(t, data, frameSize, 2)
	fs, err := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(bytes.NewReader(z), fs, conc, -1)
	defer fr.Close()
	seen := map[*byte]bool{}
	buf := make([]byte, 4<<10)
	var got []byte
	for {
		k, err := fr.Read(buf)
		got = append(got, buf[:k]...)
		if fr.cur != nil && cap(fr.cur.out) > 0 {
			seen[&fr.cur.out[:1][0]] = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched() // let the decoders run ahead as far as they may
	}
	if !bytes.Equal(got, data) {
		t.Fatal("decoded bytes differ")
	}
	if len(seen) > conc+1 {
		t.Errorf("frames decoded into %d buffers, want at most %d", len(seen), conc+1)
	}
}

// TestFrameReaderHeadOneAhead: until Release, the frames of the head are
// decoded one ahead of the reader, into two buffers, so that they do not
// add up with what the caller allocates to check the head; after it, the
// usual concurrency+1.
func TestFrameReaderHeadOneAhead(t *testing.T) {
	const frameSize, n, conc = 64 << 10, 16, 2
	data := testData(n * frameSize)
	z := frames(t, data, frameSize, 2)
	fs, err := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(bytes.NewReader(z), fs, conc, 6*frameSize)
	defer fr.Close()
	seen := map[*byte]bool{}
	buf := make([]byte, 4<<10)
	var got []byte
	for len(got) < len(data) {
		if len(got) == 6*frameSize {
			if len(seen) > 2 {
				t.Fatalf("head decoded into %d buffers, want at most 2", len(seen))
			}
			fr.Release()
		}
		want := min(len(buf), 6*frameSize-len(got))
		if len(got) >= 6*frameSize {
			want = len(buf)
		}
		k, err := fr.Read(buf[:want])
		got = append(got, buf[:k]...)
		if fr.cur != nil && cap(fr.cur.out) > 0 {
			seen[&fr.cur.out[:1][0]] = true
		}
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched()
	}
	if !bytes.Equal(got, data) {
		t.Fatal("decoded bytes differ")
	}
	if len(seen) > conc+1 {
		t.Errorf("frames decoded into %d buffers, want at most %d", len(seen), conc+1)
	}
}
