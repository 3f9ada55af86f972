package kit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// hashBuffer is each hashing goroutine's read buffer: large enough that a
// big file takes few reads, small enough to stay out of the memory budget.
const hashBuffer = 256 << 10

// hasher takes the size and digest of files on a few goroutines of its own
// while collectFiles goes on walking and checking: the files listed first
// are hashed while the rest are still being listed. Results are kept by
// the order the files were added in, so that the error reported is the one
// of the first file that fails, whatever the goroutines' timing.
type hasher struct {
	jobs    chan hashJob
	closed  sync.Once
	wg      sync.WaitGroup
	stopped atomic.Bool
	mu      sync.Mutex
	res     []hashResult
}

type hashJob struct {
	i    int
	file string
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
	h := &hasher{jobs: make(chan hashJob, 1024)}
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
		var r hashResult
		if !h.stopped.Load() {
			r.size, r.sum, r.err = hashFile(j.file, buf)
		}
		h.mu.Lock()
		h.res[j.i] = r
		h.mu.Unlock()
	}
}

// add queues file; it is the next result.
func (h *hasher) add(file string) {
	h.mu.Lock()
	i := len(h.res)
	h.res = append(h.res, hashResult{})
	h.mu.Unlock()
	h.jobs <- hashJob{i, file}
}

// wait returns the results, in the order the files were added, once every
// file is hashed, or the first error.
func (h *hasher) wait() ([]hashResult, error) {
	h.finish()
	for _, r := range h.res {
		if r.err != nil {
			return nil, r.err
		}
	}
	return h.res, nil
}

// stop drops the files not hashed yet and waits for the goroutines; it is
// safe to call after wait.
func (h *hasher) stop() {
	h.stopped.Store(true)
	h.finish()
}

func (h *hasher) finish() {
	h.closed.Do(func() { close(h.jobs) })
	h.wg.Wait()
}

func hashFile(file string, buf []byte) (int64, string, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	// A read loop, not io.CopyBuffer: *os.File's WriteTo would take the
	// copy over with a buffer of its own for every file.
	sum := sha256.New()
	var n int64
	for {
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
