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
// the live heap: after every collection it is the live heap plus
// memoryHeadroom, and never under memoryFloor. GOMEMLIMIT, when set, is used
// as it is.
const (
	memoryFloor    = 64 << 20
	memoryHeadroom = 16 << 20
)

// memoryLimit is the soft memory limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	return max(memoryFloor, int64(live)+memoryHeadroom)
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

// afterGC arms a finalizer that runs once the next collection is done: it
// sets the limit for the heap that collection found live, and arms the
// next one.
func afterGC() {
	runtime.SetFinalizer(new(int64), func(*int64) {
		if !memoryLimitOn.Load() {
			return
		}
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(memoryLimit(s[0].Value.Uint64()))
		}
		afterGC()
	})
}
