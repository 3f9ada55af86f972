package seekable

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os/exec"
	"testing"
)

func frames(t *testing.T, data []byte, frameSize, conc int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, WriterOptions{Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += frameSize {
		end := min(off+frameSize, len(data))
		buf := Buffer(end - off)
		buf = append(buf, data[off:end]...)
		if err := w.WriteFrame(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func testData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b[:n/2])
	for i := n / 2; i < n; i++ {
		b[i] = byte(i % 7)
	}
	return b
}

func TestRoundTripParallelAndSequential(t *testing.T) {
	data := testData(3<<20 + 12345)
	z := frames(t, data, 256<<10, 2)
	fs, err := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != (len(data)+256<<10-1)/(256<<10) {
		t.Fatalf("%d frames", len(fs))
	}
	fr := NewFrameReader(bytes.NewReader(z), fs, 2, -1)
	got, err := io.ReadAll(fr)
	fr.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("parallel read: err %v, equal %v", err, bytes.Equal(got, data))
	}
	dec, err := NewDecoder(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err = io.ReadAll(dec)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read (seek table skipped): err %v", err)
	}
}

func TestBytesDoNotDependOnConcurrency(t *testing.T) {
	data := testData(2 << 20)
	a := frames(t, data, 100<<10, 1)
	b := frames(t, data, 100<<10, 7)
	if !bytes.Equal(a, b) {
		t.Fatal("output differs between 1 and 7 encoder goroutines")
	}
}

func TestStockZstdReadsIt(t *testing.T) {
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("no zstd binary")
	}
	data := testData(1 << 20)
	z := frames(t, data, 64<<10, 2)
	cmd := exec.Command(zstd, "-dc")
	cmd.Stdin = bytes.NewReader(z)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("zstd -dc: %v", err)
	}
}

func TestSeekTableLies(t *testing.T) {
	data := testData(512 << 10)
	z := frames(t, data, 128<<10, 2)
	// A table whose frame sizes do not add up to the stream.
	bad := append([]byte(nil), z...)
	bad[len(bad)-9-8] ^= 1 // compressed size of the last frame
	if _, err := ReadSeekTable(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrFormat) {
		t.Fatalf("lying table: %v", err)
	}
	// A frame claiming to decode to more than it does.
	fs, _ := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	fs[1].DecompressedSize++
	fr := NewFrameReader(bytes.NewReader(z), fs, 2, -1)
	defer fr.Close()
	if _, err := io.Copy(io.Discard, fr); !errors.Is(err, ErrFormat) {
		t.Fatalf("lying decompressed size: %v", err)
	}
	// No footer magic: not seekable, not an error.
	if _, err := ReadSeekTable(bytes.NewReader(z[:len(z)-1]), int64(len(z)-1)); !errors.Is(err, ErrNoSeekTable) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestTruncatedFrameStream(t *testing.T) {
	data := testData(512 << 10)
	z := frames(t, data, 128<<10, 2)
	fs, _ := ReadSeekTable(bytes.NewReader(z), int64(len(z)))
	fr := NewFrameReader(bytes.NewReader(z[:fs[2].Offset+10]), fs, 2, -1)
	defer fr.Close()
	if _, err := io.Copy(io.Discard, fr); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated stream: %v", err)
	}
}

func BenchmarkWriter(b *testing.B) {
	data := testData(16 << 20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		w, _ := NewWriter(io.Discard, WriterOptions{})
		for off := 0; off < len(data); off += 4 << 20 {
			buf := Buffer(4 << 20)
			buf = append(buf, data[off:off+4<<20]...)
			w.WriteFrame(buf)
		}
		w.Close()
	}
}

func BenchmarkFrameReader(b *testing.B) {
	data := testData(16 << 20)
	var z bytes.Buffer
	w, _ := NewWriter(&z, WriterOptions{})
	for off := 0; off < len(data); off += 4 << 20 {
		buf := Buffer(4 << 20)
		w.WriteFrame(append(buf, data[off:off+4<<20]...))
	}
	w.Close()
	fs, _ := ReadSeekTable(bytes.NewReader(z.Bytes()), int64(z.Len()))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fr := NewFrameReader(bytes.NewReader(z.Bytes()), fs, 0, -1)
		io.Copy(io.Discard, fr)
		fr.Close()
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after == 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

// TestWriterBuffersNeverDeadlock drives a Writer through its own buffers,
// foreign ones, empty frames and a failing destination: WriteFrame and
// Buffer must never wait forever, and the first write error comes back.
func TestWriterBuffersNeverDeadlock(t *testing.T) {
	for _, conc := range []int{1, 2, 3} {
		for _, after := range []int{0, 3, 1000} {
			w, err := NewWriter(&failingWriter{after: after}, WriterOptions{Concurrency: conc})
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for i := 0; i < 40 && werr == nil; i++ {
				var b []byte
				switch i % 4 {
				case 0:
					b = Buffer(64 << 10) // foreign
				case 1:
					b = w.Buffer(0)[:0] // empty frame
				default:
					b = w.Buffer(64 << 10)
				}
				for len(b) < cap(b) && i%4 != 1 {
					b = append(b, byte(i))
				}
				werr = w.WriteFrame(b)
			}
			cerr := w.Close()
			if after < 40 && werr == nil && cerr == nil {
				t.Errorf("conc %d, fail after %d: no error", conc, after)
			}
			if after == 1000 && (werr != nil || cerr != nil) {
				t.Errorf("conc %d: %v, %v", conc, werr, cerr)
			}
		}
	}
}
