// Package fifotest puts named pipes (FIFOs) where a program expects a
// file, and guards the calls that must not wait on them, for tests.
package fifotest

import (
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unblockAfter is how long Guard lets a call run before it says the call
// blocked. It is no timing assertion: a correct call returns at once, and
// only a call that waits for ever reaches it.
const unblockAfter = 20 * time.Second

// Replace removes the file at path (if any) and puts a named pipe there.
func Replace(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Guard watches a call that must not block on the named pipe at path:
// call the returned function when it has returned. If it has not after
// a while, Guard reports that it blocked and opens the pipe for writing,
// which lets an open(2) for reading waiting on it return (and a read on
// it see the end of file), so that wrong code fails the test instead of
// hanging it.
func Guard(t testing.TB, path string) (done func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	done = func() { once.Do(func() { close(ch) }) }
	// A test that ends early (t.Fatal) stops the watch too.
	t.Cleanup(done)
	go func() {
		select {
		case <-ch:
		case <-time.After(unblockAfter):
			t.Errorf("a call blocked on the named pipe %s", path)
			if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		}
	}()
	return done
}
