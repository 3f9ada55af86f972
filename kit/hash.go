package kit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/offkit/offkit/internal/plainfile"
)

// errHashStopped is the result of a file whose hashing was stopped.
var errHashStopped = errors.New("hashing stopped")

const (
	// hashBuffer is each hashing goroutine's read buffer: large enough that
	// a big file takes few reads, small enough to stay out of the memory
	// budget.
	hashBuffer = 256 << 10
	// hashBatch is how many files a hashing goroutine is handed at once:
	// one hand-over per file would wake a goroutine per small file.
	hashBatch = 64
)

// hasher takes the size and digest of files on a few goroutines of its own
// while collectFiles goes on walking and checking: the files listed first
// are hashed while the rest are still being listed. Results are kept in
// the order the files were added in, so that the error reported is the one
// of the first file that fails, whatever the goroutines' timing.
type hasher struct {
	jobs    chan *hashJob
	batches []*hashJob // in the order added; the last one is being filled
	closed  sync.Once
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// hashJob is a batch of files and, once a goroutine is done with it, their
// results.
type hashJob struct {
	files []string
	res   []hashResult
}

type hashResult struct {
	size int64
	sum  string
	err  error
}

// startHasher starts a hasher. Reading a file that is not in the page
// cache waits on the disk, so it runs a goroutine more than there are
// cores.
func startHasher() *hasher {
	h := &hasher{jobs: make(chan *hashJob, 16)}
	for range runtime.GOMAXPROCS(0) + 1 {
		h.wg.Add(1)
		go h.run()
	}
	return h
}

func (h *hasher) run() {
	defer h.wg.Done()
	buf := make([]byte, hashBuffer)
	for j := range h.jobs {
		j.res = make([]hashResult, len(j.files))
		for i, file := range j.files {
			if h.stopped.Load() {
				break
			}
			r := &j.res[i]
			r.size, r.sum, r.err = hashFile(file, buf, &h.stopped)
		}
	}
}

// add queues file; its result comes next after those of the files added
// before.
func (h *hasher) add(file string) {
	n := len(h.batches)
	if n == 0 || len(h.batches[n-1].files) == hashBatch {
		if n > 0 {
			h.jobs <- h.batches[n-1]
		}
		h.batches = append(h.batches, &hashJob{files: make([]string, 0, hashBatch)})
		n++
	}
	j := h.batches[n-1]
	j.files = append(j.files, file)
}

// wait returns the results, in the order the files were added, once every
// file is hashed, or the error of the first file that failed.
func (h *hasher) wait() ([]hashResult, error) {
	h.finish()
	n := 0
	for _, j := range h.batches {
		n += len(j.res)
	}
	out := make([]hashResult, 0, n)
	for _, j := range h.batches {
		for _, r := range j.res {
			if r.err != nil {
				return nil, r.err
			}
		}
		out = append(out, j.res...)
	}
	return out, nil
}

// stop drops the files not hashed yet and waits for the goroutines; it is
// safe to call after wait.
func (h *hasher) stop() {
	h.stopped.Store(true)
	h.finish()
}

// finish hands over the last batch and waits until every batch is done.
func (h *hasher) finish() {
	h.closed.Do(func() {
		if n := len(h.batches); n > 0 {
			h.jobs <- h.batches[n-1]
		}
		close(h.jobs)
	})
	h.wg.Wait()
}

// hashFile returns the size and digest of file; it gives up, with
// errHashStopped, once stopped is set.
func hashFile(file string, buf []byte, stopped *atomic.Bool) (int64, string, error) {
	f, _, err := plainfile.OpenRegular(file)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	// A read loop, not io.CopyBuffer: *os.File's WriteTo would take the
	// copy over with a buffer of its own for every file.
	sum := sha256.New()
	var n int64
	for {
		if stopped.Load() {
			return 0, "", errHashStopped
		}
		k, err := f.Read(buf)
		sum.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			return n, hex.EncodeToString(sum.Sum(nil)), nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("reading %s: %w", file, err)
		}
	}
}
