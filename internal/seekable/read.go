package seekable

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Decoder decodes an ordinary (not necessarily seekable) zstd stream, with
// the window and memory limits of the format. Its errors tell damage
// (DamageError with Frame -1) from limits (ErrFormat) and from errors of
// the underlying reader, which it returns as they are.
type Decoder struct {
	dec *zstd.Decoder
	src *sourceReader
}

// NewDecoder returns a streaming decoder of r. The caller must Close it.
func NewDecoder(r io.Reader) (*Decoder, error) {
	src := &sourceReader{r: r}
	dec, err := zstd.NewReader(src,
		zstd.WithDecoderMaxWindow(MaxWindow),
		zstd.WithDecoderMaxMemory(MaxFrameSize*4),
		zstd.WithDecoderConcurrency(2),
	)
	if err != nil {
		return nil, err
	}
	return &Decoder{dec: dec, src: src}, nil
}

// Read implements io.Reader.
func (d *Decoder) Read(p []byte) (int, error) {
	n, err := d.dec.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	if d.src.err != nil && d.src.err != io.EOF {
		return n, d.src.err
	}
	return n, classify(-1, err)
}

// Close stops the decoder.
func (d *Decoder) Close() { d.dec.Close() }

// sourceReader remembers the underlying reader's error, so that a read
// error is never taken for damage.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// DamageError reports compressed bytes that fail their checksum or do not
// decode: damage in transit, as opposed to a stream that is over a limit or
// whose seek table lies (ErrFormat).
type DamageError struct {
	// Frame is the index of the damaged frame in the seek table, -1 when
	// the stream is read without one.
	Frame int
	Err   error
}

func (e *DamageError) Error() string {
	if e.Frame < 0 {
		return fmt.Sprintf("the zstd stream is damaged: %v", e.Err)
	}
	return fmt.Sprintf("frame %d is damaged: %v", e.Frame, e.Err)
}

func (e *DamageError) Unwrap() error { return e.Err }

// classify tells a frame over the decoder's limits (ErrFormat) from a
// damaged one (DamageError).
func classify(frame int, err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded),
		errors.Is(err, zstd.ErrFrameSizeExceeded),
		// Bytes that do not start a frame at all: not a damaged frame but
		// something else appended to, or standing for, the stream.
		errors.Is(err, zstd.ErrMagicMismatch):
		if frame < 0 {
			return fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return fmt.Errorf("frame %d: %w: %w", frame, ErrFormat, err)
	}
	return &DamageError{Frame: frame, Err: err}
}

// FrameReader decodes the frames of a seekable stream on several goroutines
// and returns their bytes in order. It reads r strictly sequentially, so r
// may be a pipe or a chain of parts.
type FrameReader struct {
	queue   chan *frameJob
	stop    chan struct{}
	release chan struct{}
	relOnce sync.Once
	once    sync.Once
	cur     *frameJob
	pos     int
	err     error
	wg      sync.WaitGroup
	// Free buffers for compressed frames (ins) and decoded ones (outs),
	// each of the largest size in the seek table. outs holds
	// concurrency+1 buffers (nil until first used), and a frame is read
	// only once it has one: the frame being read from plus one decoding on
	// each goroutine; until Release, only two (the head is read one frame
	// ahead). ins holds concurrency buffers: a frame read waits for a
	// decoding goroutine anyway. That bounds the frames in flight, so once
	// that many buffers exist, nothing more is allocated, whatever the
	// collector does (a sync.Pool is emptied by every collection, and holds
	// buffers of any size).
	ins, outs     chan []byte
	maxIn, maxOut int
}

type frameJob struct {
	index int
	in    []byte
	want  int64
	out   []byte
	err   error
	done  chan struct{}
}

// NewFrameReader starts decoding frames, read from r one after another; once
// the last frame is read, the rest of r (the seek table) is read and
// discarded, so a hashing reader under r sees every byte. concurrency <= 0
// means GOMAXPROCS.
//
// Only the frames that start within the first hold decompressed bytes are
// read and decoded until Release is called: a stream is not decoded ahead
// before its head has been trusted. hold < 0 holds nothing back.
func NewFrameReader(r io.Reader, frames []Frame, concurrency int, hold int64) *FrameReader {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	inFlight := concurrency + 1
	fr := &FrameReader{
		queue:   make(chan *frameJob, inFlight),
		stop:    make(chan struct{}),
		release: make(chan struct{}),
		ins:     make(chan []byte, concurrency),
		outs:    make(chan []byte, inFlight),
	}
	for range inFlight {
		fr.outs <- nil
	}
	for range concurrency {
		fr.ins <- nil
	}
	for _, f := range frames {
		fr.maxIn = max(fr.maxIn, int(f.CompressedSize))
		fr.maxOut = max(fr.maxOut, int(f.DecompressedSize))
	}
	if hold < 0 {
		fr.Release()
	}
	work := make(chan *frameJob, concurrency)
	for i := 0; i < concurrency; i++ {
		fr.wg.Add(1)
		go func() {
			defer fr.wg.Done()
			dec, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(MaxFrameSize),
				zstd.WithDecoderMaxWindow(MaxWindow))
			if err != nil {
				for j := range work {
					j.err = err
					close(j.done)
				}
				return
			}
			defer dec.Close()
			for j := range work {
				j.out, j.err = dec.DecodeAll(j.in, j.out[:0])
				if j.err == nil && int64(len(j.out)) != j.want {
					j.err = fmt.Errorf("frame %d decodes to %d bytes, seek table says %d: %w", j.index, len(j.out), j.want, ErrFormat)
				} else if j.err != nil {
					j.err = classify(j.index, j.err)
				}
				keep(fr.ins, j.in)
				j.in = nil
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(fr.queue)
		defer close(work)
		// Until Release, the head is decoded one frame ahead of the
		// reader: the other buffers are reserved, so the memory of the
		// frames does not add up with the caller's while it checks the
		// head.
		reserved := 0
		select {
		case <-fr.release:
		default:
			for ; reserved < inFlight-2; reserved++ {
				<-fr.outs
			}
		}
		var start int64 // decompressed offset of frame i
		for i, f := range frames {
			if start >= hold {
				select {
				case <-fr.release:
				case <-fr.stop:
					return
				}
			}
			if reserved > 0 {
				select {
				case <-fr.release:
					for ; reserved > 0; reserved-- {
						keep(fr.outs, nil)
					}
				default:
				}
			}
			start += f.DecompressedSize
			j := &frameJob{index: i, want: f.DecompressedSize, done: make(chan struct{})}
			select {
			case j.out = <-fr.outs:
			case <-fr.stop:
				return
			}
			if cap(j.out) < int(f.DecompressedSize) {
				j.out = make([]byte, 0, fr.maxOut)
			}
			j.out = j.out[:0]
			var in []byte
			select {
			case in = <-fr.ins:
			case <-fr.stop:
				return
			}
			if cap(in) < int(f.CompressedSize) {
				in = make([]byte, 0, fr.maxIn)
			}
			in = in[:f.CompressedSize]
			if _, err := io.ReadFull(r, in); err != nil {
				keep(fr.ins, in)
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				j.err = fmt.Errorf("reading frame %d: %w", i, err)
				close(j.done)
				select {
				case fr.queue <- j:
				case <-fr.stop:
				}
				return
			}
			j.in = in
			select {
			case fr.queue <- j:
			case <-fr.stop:
				keep(fr.ins, in)
				return
			}
			work <- j
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			j := &frameJob{index: len(frames), err: fmt.Errorf("reading seek table: %w", err), done: make(chan struct{})}
			close(j.done)
			select {
			case fr.queue <- j:
			case <-fr.stop:
			}
		}
	}()
	return fr
}

// Read implements io.Reader.
func (fr *FrameReader) Read(p []byte) (int, error) {
	for {
		if fr.err != nil {
			return 0, fr.err
		}
		if fr.cur != nil && fr.pos < len(fr.cur.out) {
			n := copy(p, fr.cur.out[fr.pos:])
			fr.pos += n
			return n, nil
		}
		if fr.cur != nil {
			keep(fr.outs, fr.cur.out)
			fr.cur = nil
		}
		j, ok := <-fr.queue
		if !ok {
			fr.err = io.EOF
			continue
		}
		<-j.done
		if j.err != nil {
			fr.err = j.err
			continue
		}
		fr.cur, fr.pos = j, 0
	}
}

// Release lets the frames held back by NewFrameReader be read and decoded.
func (fr *FrameReader) Release() { fr.relOnce.Do(func() { close(fr.release) }) }

// Close stops the decoding goroutines.
func (fr *FrameReader) Close() error {
	fr.once.Do(func() {
		close(fr.stop)
		// Drain so the producer and workers can finish.
		go func() {
			for j := range fr.queue {
				<-j.done
			}
		}()
	})
	fr.wg.Wait()
	return nil
}
