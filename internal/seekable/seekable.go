// Package seekable writes and reads the zstd seekable format: a sequence of
// independent zstd frames followed by a seek table in a skippable frame, as
// the zstd project's contrib/seekable_format describes it.
//
// The seek table is one skippable frame (magic 0x184D2A5E) holding, per
// frame, the compressed and decompressed size (two little-endian uint32,
// no checksums), then a footer: the number of frames (uint32), a descriptor
// byte (0: no checksums) and the seekable magic 0x8F92EAB1. Stock zstd skips
// it, so a seekable stream is also an ordinary zstd stream.
//
// Determinism: every frame is encoded alone by EncodeAll with fixed options
// (level, one goroutine per encoder, CRC on), so the bytes depend only on the
// input and the frame boundaries the caller chooses, never on the number of
// cores. Frames are compressed and decompressed on several goroutines at
// once, and written or returned in order.
//
// Limits on untrusted streams: a frame decodes to at most MaxFrameSize bytes
// and is at most MaxCompressedFrameSize bytes; a seek table lists at most
// MaxFrames frames whose sizes must add up exactly to the stream.
package seekable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Limits.
const (
	MaxFrameSize           = 64 << 20 // decompressed bytes of one frame
	MaxCompressedFrameSize = MaxFrameSize + MaxFrameSize/128 + 1<<17
	MaxFrames              = 1 << 24
	MaxWindow              = 64 << 20 // decoder window for sequential reads
)

const (
	skippableMagic = 0x184D2A5E
	seekableMagic  = 0x8F92EAB1
	footerSize     = 9
	entrySize      = 8
)

// ErrNoSeekTable is returned by ReadSeekTable for a stream without one.
var ErrNoSeekTable = errors.New("no seek table")

// ErrFormat reports a malformed seek table or frame.
var ErrFormat = errors.New("malformed seekable zstd")

// Frame is one frame of a seekable stream.
type Frame struct {
	Offset           int64 // of the compressed frame in the stream
	CompressedSize   int64
	DecompressedSize int64
}

// WriterOptions configure a Writer; the zero value means level 3
// (zstd.SpeedDefault) on GOMAXPROCS goroutines, for frames of up to
// MaxFrameSize bytes.
type WriterOptions struct {
	Level       zstd.EncoderLevel
	Concurrency int
	// MaxFrame is the size of the largest frame the caller will write
	// (0: MaxFrameSize). It sizes the encoders' history, never the bytes
	// (see NewEncoder).
	MaxFrame int
}

// Writer compresses frames in parallel and writes them in order, then the
// seek table on Close.
//
// Concurrency goroutines compress frames; one more writes them, in order.
// A Writer has Concurrency frame buffers, that Buffer hands out and takes
// back once their frame is compressed, and Concurrency buffers for
// compressed frames, taken by WriteFrame and given back once the frame is
// written: Buffer and WriteFrame wait for a free one. The memory of a Writer is so bounded, and it
// allocates nothing in steady state, which matters under a soft memory
// limit (a sync.Pool is emptied by every garbage collection).
type Writer struct {
	w      io.Writer
	work   chan *job
	queue  chan *job
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	frames []Frame
	off    int64
	closed bool
	// Buffers to reuse: ins for Buffer, outs for compressed frames.
	ins, outs chan []byte
}

type job struct {
	in    []byte // given back once compressed
	dsize int64
	out   []byte
	done  chan struct{}
	// Or frames already compressed, copied from src as they are.
	src    io.Reader
	copied []Frame
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.Level == 0 {
		opts.Level = zstd.SpeedDefault
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	c := opts.Concurrency
	sw := &Writer{
		w:     w,
		work:  make(chan *job, c),
		queue: make(chan *job, c),
		done:  make(chan struct{}),
		ins:   make(chan []byte, c),
		outs:  make(chan []byte, c),
	}
	for range c {
		sw.ins <- nil // allocated on first use
		sw.outs <- nil
	}
	encs := make([]*zstd.Encoder, c)
	for i := range encs {
		enc, err := NewEncoder(opts.Level, opts.MaxFrame)
		if err != nil {
			for _, e := range encs[:i] {
				e.Close()
			}
			return nil, err
		}
		encs[i] = enc
	}
	for _, enc := range encs {
		sw.wg.Add(1)
		go func() {
			defer sw.wg.Done()
			defer enc.Close()
			for j := range sw.work {
				j.dsize = int64(len(j.in))
				if sw.getErr() == nil {
					j.out = enc.EncodeAll(j.in, j.out)
				}
				keep(sw.ins, j.in)
				j.in = nil
				close(j.done)
			}
		}()
	}
	go sw.drain()
	return sw, nil
}

func (sw *Writer) drain() {
	defer close(sw.done)
	for j := range sw.queue {
		<-j.done
		if j.src != nil {
			sw.copyFrames(j)
			continue
		}
		if sw.getErr() != nil {
			keep(sw.outs, j.out)
			continue
		}
		n, err := sw.w.Write(j.out)
		keep(sw.outs, j.out)
		if err != nil {
			sw.setErr(fmt.Errorf("writing frame: %w", err))
			continue
		}
		sw.mu.Lock()
		sw.frames = append(sw.frames, Frame{Offset: sw.off, CompressedSize: int64(n), DecompressedSize: j.dsize})
		sw.off += int64(n)
		sw.mu.Unlock()
	}
}

// copyFrames writes the frames of j, already compressed, as they are.
func (sw *Writer) copyFrames(j *job) {
	if sw.getErr() != nil {
		return
	}
	// One buffer for every frame, of a size that takes a frame in a few
	// writes: io.CopyN would take a new 32 KiB one per frame.
	buf := make([]byte, copyBuffer)
	for _, f := range j.copied {
		n, err := io.CopyBuffer(sw.w, io.LimitReader(j.src, f.CompressedSize), buf)
		if err == nil && n < f.CompressedSize {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			sw.setErr(fmt.Errorf("copying frame: %w", err))
			return
		}
		sw.mu.Lock()
		sw.frames = append(sw.frames, Frame{Offset: sw.off, CompressedSize: n, DecompressedSize: f.DecompressedSize})
		sw.off += n
		sw.mu.Unlock()
	}
}

// copyBuffer is the buffer of CopyFrames.
const copyBuffer = 1 << 20

// CopyFrames queues frames that are already compressed, their bytes read
// in order from src, to be written as they are after the frames queued
// before. src is read on the Writer's goroutine until Close returns.
func (sw *Writer) CopyFrames(src io.Reader, frames []Frame) error {
	if err := sw.getErr(); err != nil {
		return err
	}
	done := make(chan struct{})
	close(done)
	sw.queue <- &job{src: src, copied: frames, done: done}
	return nil
}

// NewEncoder returns an encoder with the fixed options of the format, for
// frames of up to maxFrame bytes (0: MaxFrameSize).
func NewEncoder(level zstd.EncoderLevel, maxFrame int) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithWindowSize(encoderWindow(level, maxFrame)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
		zstd.WithLowerEncoderMem(false),
	)
}

// minWindow is the least window NewEncoder gives an encoder.
const minWindow = 1 << 20

// defaultWindow is the window zstd.NewWriter gives an encoder of level:
// 4 MiB at SpeedFastest, 8 MiB at the others.
func defaultWindow(level zstd.EncoderLevel) int {
	if level == zstd.SpeedFastest {
		return 4 << 20
	}
	return 8 << 20
}

// encoderWindow is the window of an encoder of level for frames of up to
// maxFrame bytes: the least power of two that holds a whole frame, between
// minWindow and the level's default window. Every frame is encoded alone
// (EncodeAll), so its matches never reach past its own start, and a frame
// that fits the window is written as a single segment whatever the window:
// a window that holds the largest frame gives the bytes the default window
// gives (TestEncoderWindowKeepsBytes), while the history an encoder
// allocates, twice its window, shrinks from 16 MiB to 8 MiB for the
// default 4 MiB frames. Frames larger than the default window keep it.
func encoderWindow(level zstd.EncoderLevel, maxFrame int) int {
	def := defaultWindow(level)
	if maxFrame <= 0 || maxFrame > def {
		return def
	}
	w := minWindow
	for w < maxFrame {
		w <<= 1
	}
	return w
}

// Buffer returns a buffer of capacity at least n for WriteFrame, one of the
// Writer's own, waiting until one is free.
func (sw *Writer) Buffer(n int) []byte {
	return reuse(sw.ins, n)
}

// reuse takes a buffer of capacity at least n from free, waiting for one:
// free holds a fixed number of buffers (nil until first used), which bounds
// the memory of a Writer.
func reuse(free chan []byte, n int) []byte {
	b := <-free
	if cap(b) < n {
		b = make([]byte, 0, n)
	}
	return b[:0]
}

// keep gives b back to free; one too many (a buffer WriteFrame was given
// that did not come from Buffer) is dropped.
func keep(free chan []byte, b []byte) {
	select {
	case free <- b[:0]:
	default:
	}
}

// Buffer returns a new buffer of capacity n. A Writer's own Buffer method
// reuses the buffers of its frames instead, and a FrameReader its own.
func Buffer(n int) []byte {
	return make([]byte, 0, n)
}

func (sw *Writer) getErr() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err
}

func (sw *Writer) setErr(err error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err == nil {
		sw.err = err
	}
}

// WriteFrame queues p as one frame. The Writer owns p from now on (it goes back to the
// buffers sw.Buffer draws from). p must not be larger than MaxFrameSize.
func (sw *Writer) WriteFrame(p []byte) error {
	if err := sw.getErr(); err != nil {
		keep(sw.ins, p)
		return err
	}
	if len(p) == 0 {
		keep(sw.ins, p)
		return nil
	}
	if len(p) > MaxFrameSize {
		keep(sw.ins, p)
		return fmt.Errorf("frame of %d bytes over %d: %w", len(p), MaxFrameSize, ErrFormat)
	}
	// The buffer of compressed bytes is taken here, in the order of the
	// frames, that the writer gives them back in: taken by the goroutines
	// in the order they happen to run, the last free one could go to a
	// frame queued after the one the writer waits for.
	j := &job{in: p, out: reuse(sw.outs, len(p)+len(p)/64+1024), done: make(chan struct{})}
	sw.queue <- j
	sw.work <- j
	return nil
}

// Close waits for every frame, writes the seek table and returns the first
// error. It does not close the underlying writer.
func (sw *Writer) Close() error {
	if sw.closed {
		return sw.getErr()
	}
	sw.closed = true
	close(sw.work)
	close(sw.queue)
	sw.wg.Wait()
	<-sw.done
	if err := sw.getErr(); err != nil {
		return err
	}
	if _, err := sw.w.Write(SeekTable(sw.frames)); err != nil {
		return fmt.Errorf("writing seek table: %w", err)
	}
	return nil
}

// SeekTable encodes the seek table frame for frames.
func SeekTable(frames []Frame) []byte {
	n := len(frames)
	b := make([]byte, 8, 8+n*entrySize+footerSize)
	binary.LittleEndian.PutUint32(b[0:], skippableMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(n*entrySize+footerSize))
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(f.CompressedSize))
		b = binary.LittleEndian.AppendUint32(b, uint32(f.DecompressedSize))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, seekableMagic)
	return b
}

// ReadSeekTable reads the seek table at the end of a stream of size bytes.
// It returns ErrNoSeekTable when the stream does not end with one, and an
// error wrapping ErrFormat when it ends with one that does not describe the
// stream exactly.
func ReadSeekTable(r io.ReaderAt, size int64) ([]Frame, error) {
	if size < 8+footerSize {
		return nil, ErrNoSeekTable
	}
	var foot [footerSize]byte
	if _, err := r.ReadAt(foot[:], size-footerSize); err != nil {
		return nil, fmt.Errorf("reading seek table footer: %w", err)
	}
	if binary.LittleEndian.Uint32(foot[5:]) != seekableMagic {
		return nil, ErrNoSeekTable
	}
	n := int64(binary.LittleEndian.Uint32(foot[0:]))
	if foot[4]&0x7c != 0 {
		return nil, fmt.Errorf("seek table descriptor %#x has reserved bits set: %w", foot[4], ErrFormat)
	}
	es := int64(entrySize)
	if foot[4]&0x80 != 0 {
		es += 4
	}
	if n > MaxFrames {
		return nil, fmt.Errorf("seek table lists %d frames, over %d: %w", n, MaxFrames, ErrFormat)
	}
	tableSize := 8 + n*es + footerSize
	if tableSize > size {
		return nil, fmt.Errorf("seek table of %d bytes in a stream of %d: %w", tableSize, size, ErrFormat)
	}
	table := make([]byte, tableSize)
	if _, err := r.ReadAt(table, size-tableSize); err != nil {
		return nil, fmt.Errorf("reading seek table: %w", err)
	}
	if binary.LittleEndian.Uint32(table[0:]) != skippableMagic ||
		int64(binary.LittleEndian.Uint32(table[4:])) != n*es+footerSize {
		return nil, fmt.Errorf("seek table frame header: %w", ErrFormat)
	}
	frames := make([]Frame, 0, n)
	var off int64
	for i := int64(0); i < n; i++ {
		e := table[8+i*es:]
		c := int64(binary.LittleEndian.Uint32(e[0:]))
		d := int64(binary.LittleEndian.Uint32(e[4:]))
		if c == 0 || c > MaxCompressedFrameSize || d > MaxFrameSize {
			return nil, fmt.Errorf("seek table frame %d: %d bytes decoding to %d, over the limits: %w", i, c, d, ErrFormat)
		}
		frames = append(frames, Frame{Offset: off, CompressedSize: c, DecompressedSize: d})
		off += c
	}
	if off != size-tableSize {
		return nil, fmt.Errorf("seek table frames cover %d bytes of %d: %w", off, size-tableSize, ErrFormat)
	}
	return frames, nil
}
