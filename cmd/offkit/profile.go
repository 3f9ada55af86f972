package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole command to the file that
// OFFKIT_CPUPROFILE names, for `make bench`; it returns the function that
// stops it. Undocumented: a tool for measuring offkit, not a feature.
func startProfile() func() {
	path := os.Getenv("OFFKIT_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
