package seekable

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// RandomReader reads the decompressed stream of a seekable zstd stream at
// any offset, reading and decoding only the frames that hold the bytes
// asked for (the seek table says where each frame lies), one frame kept
// decoded at a time. It is not safe for concurrent use.
//
// Its errors: a frame that fails its checksum or does not decode is a
// DamageError naming the frame; a frame over the limits or that decodes to
// another size than the seek table says wraps ErrFormat; a stream shorter
// than its seek table says is io.ErrUnexpectedEOF; errors of r are returned
// as they are.
type RandomReader struct {
	r      io.ReaderAt
	frames []Frame
	starts []int64 // decompressed offset of each frame; starts[len] is the size
	dec    *zstd.Decoder
	cur    int
	in     []byte
	out    []byte
	// Decoded counts the frames decoded so far (a frame decoded twice
	// counts twice).
	Decoded int
}

// NewRandomReader returns a RandomReader of the stream in r that frames
// (from ReadSeekTable) describe. The caller must Close it.
func NewRandomReader(r io.ReaderAt, frames []Frame) (*RandomReader, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxFrameSize),
		zstd.WithDecoderMaxWindow(MaxWindow))
	if err != nil {
		return nil, err
	}
	starts := make([]int64, len(frames)+1)
	for i, f := range frames {
		starts[i+1] = starts[i] + f.DecompressedSize
	}
	return &RandomReader{r: r, frames: frames, starts: starts, dec: dec, cur: -1}, nil
}

// Size is the size of the decompressed stream.
func (s *RandomReader) Size() int64 { return s.starts[len(s.frames)] }

// Close releases the decoder.
func (s *RandomReader) Close() { s.dec.Close() }

// ReadAt implements io.ReaderAt.
func (s *RandomReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("offset %d: %w", off, ErrFormat)
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= s.Size() {
			return n, io.EOF
		}
		i := sort.Search(len(s.frames), func(i int) bool { return s.starts[i+1] > o })
		if err := s.load(i); err != nil {
			return n, err
		}
		n += copy(p[n:], s.out[o-s.starts[i]:])
	}
	return n, nil
}

// load decodes frame i, unless it is the one kept.
func (s *RandomReader) load(i int) error {
	if s.cur == i {
		return nil
	}
	s.cur = -1
	f := s.frames[i]
	if int64(cap(s.in)) < f.CompressedSize {
		s.in = make([]byte, f.CompressedSize)
	}
	in := s.in[:f.CompressedSize]
	k, err := s.r.ReadAt(in, f.Offset)
	if k < len(in) {
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("frame %d: %d of %d bytes at offset %d: %w", i, k, len(in), f.Offset, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("reading frame %d: %w", i, err)
	}
	s.Decoded++
	out, err := s.dec.DecodeAll(in, s.out[:0])
	if err != nil {
		return classify(i, err)
	}
	s.out = out
	if int64(len(out)) != f.DecompressedSize {
		return fmt.Errorf("frame %d decodes to %d bytes, seek table says %d: %w", i, len(out), f.DecompressedSize, ErrFormat)
	}
	s.cur = i
	return nil
}
