package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// pinned keeps small objects alive for the whole test binary, as a
// command keeps small values (flags, keys, names) for its whole run.
var pinned []*int64

// TestMemoryLimitFollowsPastSmallObjects: the limit still follows the live
// heap when small objects allocated right after each arming stay alive.
// The allocator packs such objects into one block with the object afterGC
// watches, had that object been one of them too, and its finalizer would
// never run: the limit would stay at the floor, and the collector would
// run without pause under a larger live heap.
func TestMemoryLimitFollowsPastSmallObjects(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer func() {
		memoryLimitOn.Store(false)
		debug.SetMemoryLimit(old)
	}()
	memoryLimitOn.Store(true)
	debug.SetMemoryLimit(memoryFloor)
	afterGC()
	pinned = append(pinned, new(int64), new(int64))
	live := make([]byte, 96<<20)
	for i := range live {
		live[i] = 1
	}
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < 96<<20+memoryHeadroom {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB with 96 MiB live", debug.SetMemoryLimit(-1)>>20)
		}
		runtime.GC()
		pinned = append(pinned, new(int64))
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)
}
