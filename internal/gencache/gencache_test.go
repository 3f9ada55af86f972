package gencache

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent first requests for one generation build it once.
func TestOneBuildPerGeneration(t *testing.T) {
	c := New[int](4, time.Minute)
	var builds atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get("7", func() (int, error) {
				builds.Add(1)
				<-release
				return 42, nil
			})
			if v != 42 || err != nil {
				t.Errorf("Get: %d, %v", v, err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond) // let the callers pile up on the first build
	close(release)
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds of one generation, want 1", n)
	}
}

// A failed build is answered from until it is older than the retry
// period, then built again.
func TestFailedBuildRetried(t *testing.T) {
	c := New[string](4, 5*time.Second)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	builds := 0
	fail := func() (string, error) { builds++; return "", errors.New("generation 3: state.json missing") }
	for range 3 {
		if _, err := c.Get("3", fail); err == nil {
			t.Fatal("a failed build gave no error")
		}
	}
	if builds != 1 {
		t.Fatalf("%d builds within the retry period, want 1", builds)
	}
	now = now.Add(6 * time.Second)
	v, err := c.Get("3", func() (string, error) { builds++; return "ok", nil })
	if v != "ok" || err != nil || builds != 2 {
		t.Fatalf("after the retry period: %q, %v, %d builds", v, err, builds)
	}
	if _, err := c.Get("3", fail); err != nil || builds != 2 {
		t.Fatalf("a good build was built again: %v, %d builds", err, builds)
	}
}

// At most keep generations are held: the oldest is forgotten (and built
// again when asked for).
func TestKeepsTheLastGenerations(t *testing.T) {
	c := New[string](2, time.Minute)
	builds := map[string]int{}
	get := func(id string) {
		if _, err := c.Get(id, func() (string, error) { builds[id]++; return id, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"1", "2", "2", "3", "3", "1"} {
		get(id)
	}
	if builds["1"] != 2 || builds["2"] != 1 || builds["3"] != 1 {
		t.Errorf("builds %v, want 1 built twice (forgotten after 3), 2 and 3 once", builds)
	}
	if len(c.cache) != 2 || len(c.order) != 2 {
		t.Errorf("holds %d generations (%d in order), want 2", len(c.cache), len(c.order))
	}
}
