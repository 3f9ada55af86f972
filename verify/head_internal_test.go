package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// countingReader counts the compressed bytes the verifier took.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestNothingDecodedBeforeTheSignature is issue 6, finding 6: an unsigned
// kit whose seek table promises 200 frames of 64 MiB of zeros once drove
// verify to 300-400 MB before the signature was checked, because frames
// were decoded ahead. Now only the frames that start within the head limit
// are read before the head is trusted.
func TestNothingDecodedBeforeTheSignature(t *testing.T) {
	key := kittest.NewKey(t)
	m := kittest.ManifestFor([]kittest.Entry{kittest.File("files/a", []byte("a"))})
	mb, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The head frame: the manifest, unsigned.
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	tw.WriteHeader(kitfile.Header(kitfile.ManifestPath, int64(len(mb)), m.CreatedAt))
	tw.Write(mb)
	tw.Flush()

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	zeros := enc.EncodeAll(make([]byte, seekable.MaxFrameSize), nil)
	headFrame := enc.EncodeAll(head.Bytes(), nil)

	var z bytes.Buffer
	frames := []seekable.Frame{{Offset: 0, CompressedSize: int64(len(headFrame)), DecompressedSize: int64(head.Len())}}
	z.Write(headFrame)
	for i := 0; i < 200; i++ {
		frames = append(frames, seekable.Frame{Offset: int64(z.Len()), CompressedSize: int64(len(zeros)), DecompressedSize: seekable.MaxFrameSize})
		z.Write(zeros)
	}
	if head.Len()+manifest.MaxManifestSize > headLimit {
		t.Fatal("the test assumes the second frame starts within the head limit")
	}
	cr := &countingReader{r: bytes.NewReader(z.Bytes())}
	_, err = stream(context.Background(), cr, frames, Options{Keys: []*sign.PublicKey{key.Public}, Concurrency: 4})
	// Two zero blocks after the manifest end the archive: an unsigned kit
	// that ends early.
	if c := errdef.ExitCode(err); c != errdef.ExitSignature && c != errdef.ExitInvalid {
		t.Fatalf("got %v (exit %d), want a refused kit", err, c)
	}
	// The head frame and the one frame that starts inside the head limit,
	// nothing more: the 198 others were never read, let alone decoded.
	if max := int64(len(headFrame) + len(zeros)); cr.n > max {
		t.Fatalf("read %d compressed bytes before the signature check, want at most %d (%d frames)", cr.n, max, 2)
	}
}
