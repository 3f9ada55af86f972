package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		live, other uint64
		want        int64
	}{
		{0, 0, 64 << 20},
		{40 << 20, 4 << 20, 64 << 20},
		{69 << 20, 0, 77 << 20},         // a build's encoders and frames on 2 cores
		{88 << 20, 16 << 20, 112 << 20}, // the same on a 53k-entry build, with the runtime's overhead
		{200 << 20, 0, 208 << 20},       // a manifest near its limit
	} {
		if got := memoryLimit(c.live, c.other); got != c.want {
			t.Errorf("memoryLimit(%d MiB, %d MiB) = %d MiB, want %d MiB", c.live>>20, c.other>>20, got>>20, c.want>>20)
		}
	}
}

// TestMemoryLimitFollowsLiveHeap: a live heap over the floor raises the limit
// after the next collection, so the collector does not run without pause.
func TestMemoryLimitFollowsLiveHeap(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer func() {
		memoryLimitOn.Store(false)
		debug.SetMemoryLimit(old)
	}()
	memoryLimitOn.Store(true)
	debug.SetMemoryLimit(memoryFloor)
	afterGC()
	live := make([]byte, 96<<20)
	for i := range live {
		live[i] = 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) < 96<<20+memoryHeadroom {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB with 96 MiB live", debug.SetMemoryLimit(-1)>>20)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)
}
