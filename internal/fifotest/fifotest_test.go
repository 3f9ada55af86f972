package fifotest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Guard reports instead of
// failing the test that checks Guard.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// TestGuardUnblocksEveryOpen: code that blocks on the pipe, and opens it
// again after each end of file, returns (and the block is reported)
// rather than hanging the test after Guard's first unblock.
func TestGuardUnblocksEveryOpen(t *testing.T) {
	defer func(d time.Duration) { unblockAfter = d }(unblockAfter)
	unblockAfter = 10 * time.Millisecond
	p := filepath.Join(t.TempDir(), "pipe")
	Replace(t, p)
	r := &recorder{TB: t}
	done := Guard(r, p)
	opened := make(chan error, 1)
	go func() {
		// Wrong code: a blocking open and read, three times.
		for range 3 {
			f, err := os.Open(p)
			if err != nil {
				opened <- err
				return
			}
			f.Read(make([]byte, 1))
			f.Close()
		}
		opened <- nil
	}()
	// No timing assertion: the test's own timeout stops a Guard that
	// unblocks only once.
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	done()
	if errs := r.reported(); len(errs) != 1 || !strings.Contains(errs[0], "blocked on the named pipe "+p) {
		t.Errorf("Guard reported %q, want one report naming %s", errs, p)
	}
}
