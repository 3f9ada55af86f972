package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// offkit streams, so most of its heap is a fixed set of frame buffers and
// coders (more with more cores), plus the manifest being checked (more with
// more entries). The Go runtime's default lets the heap grow to twice what
// is live; a soft memory limit keeps it close to the live heap instead. A
// fixed limit below the live heap makes the collector run without pause
// (about 500 times in a 53k-entry build with 64 MiB), so the limit follows
// the live heap: after every collection it is the live heap plus the
// runtime's other memory plus memoryHeadroom, and never under memoryFloor.
// GOMEMLIMIT, when set, is used as it is.
const (
	memoryFloor = 64 << 20
	// 8 MiB: a 53k-file build's peak goes from about 98 to 93 MiB, for
	// 13 more collections (about 80 ms of CPU in 7 s); verify and install
	// are unchanged.
	memoryHeadroom = 8 << 20
)

// memoryLimit is the soft memory limit for a live heap of live bytes when
// the runtime holds other bytes besides the heap (stacks, the collector's
// metadata, fragmentation): the limit counts all of the runtime's memory,
// so without them the headroom would be eaten by that overhead and the
// collector would run without pause (380 collections in a 53k-entry build).
func memoryLimit(live, other uint64) int64 {
	return max(memoryFloor, int64(live)+int64(other)+memoryHeadroom)
}

// memoryNow reads the live heap and the runtime's memory that is not heap:
// all it has mapped and not released, less the heap's objects and free
// pages (which the limit is to keep within live + memoryHeadroom).
func memoryNow() (live, other uint64, ok bool) {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0, false
		}
	}
	v := func(i int) uint64 { return s[i].Value.Uint64() }
	heap := v(2) + v(3) + v(4)
	if v(1) > heap {
		other = v(1) - heap
	}
	return v(0), other, true
}

// memoryLimitOn is cleared to stop limitMemory's adjustments (tests).
var memoryLimitOn atomic.Bool

// limitMemory sets the soft memory limit and keeps it following the live
// heap, unless GOMEMLIMIT is set.
func limitMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	memoryLimitOn.Store(true)
	debug.SetMemoryLimit(memoryFloor)
	afterGC()
}

// gcSentinel is the object afterGC watches. It holds a pointer so that it
// is never one of the tiny objects the allocator packs together into one
// block: such an object's finalizer runs only once the whole block is
// garbage, perhaps never, and the limit would stop following the heap.
type gcSentinel struct{ _ *byte }

// afterGC arms a finalizer that runs once the next collection is done: it
// sets the limit for the heap that collection found live, and arms the
// next one.
func afterGC() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if !memoryLimitOn.Load() {
			return
		}
		if live, other, ok := memoryNow(); ok {
			debug.SetMemoryLimit(memoryLimit(live, other))
		}
		afterGC()
	})
}
