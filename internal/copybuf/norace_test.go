//go:build !race

package copybuf

const raceEnabled = false
