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
var unblockAfter = 20 * time.Second

// unblockEvery is how often Guard, once it has reported a blocked call,
// opens the pipe for writing again: wrong code that retries, or opens the
// pipe more than once, would otherwise block again after the first open.
const unblockEvery = 50 * time.Millisecond

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
// a while, Guard reports that it blocked and, until done is called (or the
// test ends), keeps opening the pipe for writing, which lets each open(2)
// for reading waiting on it return (and a read on it see the end of file),
// so that wrong code fails the test instead of hanging it, even when it
// opens the pipe again.
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
			return
		case <-time.After(unblockAfter):
		}
		t.Errorf("a call blocked on the named pipe %s", path)
		tick := time.NewTicker(unblockEvery)
		defer tick.Stop()
		for {
			if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
			select {
			case <-ch:
				return
			case <-tick.C:
			}
		}
	}()
	return done
}
