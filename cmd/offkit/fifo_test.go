package main

import (
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/fifotest"
)

// offkit debug buildid of a named pipe is exit 11 naming it, at once: it
// does not wait for a writer.
func TestDebugBuildIDNamedPipe(t *testing.T) {
	r := newRunner(t)
	p := filepath.Join(t.TempDir(), "prog")
	fifotest.Replace(t, p)
	done := fifotest.Guard(t, p)
	r.fails(11, []string{"debug", "buildid", p}, p, "a named pipe, not a regular file")
	done()
}
