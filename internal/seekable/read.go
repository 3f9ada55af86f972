package seekable

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// NewDecoder returns a streaming decoder for an ordinary (not necessarily
// seekable) zstd stream, with the window and memory limits of the format.
// The caller must Close it.
func NewDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r,
		zstd.WithDecoderMaxWindow(MaxWindow),
		zstd.WithDecoderMaxMemory(MaxFrameSize*4),
		zstd.WithDecoderConcurrency(2),
	)
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
	fr := &FrameReader{
		queue:   make(chan *frameJob, concurrency+1),
		stop:    make(chan struct{}),
		release: make(chan struct{}),
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
					j.err = fmt.Errorf("frame %d: %w: %w", j.index, ErrFormat, j.err)
				}
				release(j.in)
				j.in = nil
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(fr.queue)
		defer close(work)
		var start int64 // decompressed offset of frame i
		for i, f := range frames {
			if start >= hold {
				select {
				case <-fr.release:
				case <-fr.stop:
					return
				}
			}
			start += f.DecompressedSize
			j := &frameJob{index: i, want: f.DecompressedSize, done: make(chan struct{})}
			in := Buffer(int(f.CompressedSize))[:f.CompressedSize]
			if _, err := io.ReadFull(r, in); err != nil {
				release(in)
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
			j.out = Buffer(int(f.DecompressedSize))
			select {
			case fr.queue <- j:
			case <-fr.stop:
				release(in)
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
			release(fr.cur.out)
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
