package kittest

import (
	"sync"
	"testing"
)

// Hammer calls probe from n goroutines, over and over, until the returned
// stop is called; stop waits for them and returns how many times probe
// answered each string. A goroutine whose probe fails reports the error
// with t.Error and stops.
func Hammer(t testing.TB, n int, probe func() (string, error)) (stop func() map[string]int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				what, err := probe()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[what]++
				mu.Unlock()
			}
		}()
	}
	return func() map[string]int {
		close(done)
		wg.Wait()
		return seen
	}
}
