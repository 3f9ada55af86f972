//go:build race

package mirror

// raceEnabled: the race detector slows the byte-by-byte JSON check about
// tenfold, so the large-stream test streams less (still far over its
// memory bound).
const raceEnabled = true
