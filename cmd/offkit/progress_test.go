package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

var percent = regexp.MustCompile(`(\d+)%`)

// On a terminal the bar reaches 100% when verify succeeds; when verify
// fails part way, the bar stops where it was, says so, and the error
// follows: it never shows 100%.
func TestProgressStopsOnFailure(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	r.tty = true

	good := f.kit(t, "app", "1.0.0")
	res := r.ok("verify", good, "--key", f.pub)
	if !strings.Contains(res.stderr, "100%") {
		t.Errorf("verify of a good kit: no 100%% on the bar:\n%q", res.stderr)
	}

	// The damaged entry is in the middle: 4 MiB before it, 4 MiB after.
	bad := mismatchKit(t, f.key, 4<<20)
	for _, args := range [][]string{
		{"verify", bad, "--key", f.pub},
		{"install", bad, "--root", filepath.Join(t.TempDir(), "site"), "--key", f.pub},
	} {
		res = r.run(args...)
		if res.code != errdef.ExitMismatch {
			t.Fatalf("%s: exit %d, want 2\n%s", args[0], res.code, res.stderr)
		}
		if strings.Contains(res.stderr, "100%") {
			t.Errorf("%s of a kit damaged in the middle: the bar shows 100%%:\n%q", args[0], res.stderr)
		}
		stop := strings.Index(res.stderr, "stopped at ")
		fail := strings.Index(res.stderr, "offkit: ")
		if stop < 0 || fail < stop {
			t.Errorf("%s: want the bar, \"stopped at N%%\", then the error:\n%q", args[0], res.stderr)
			continue
		}
		// The bar's last state is where it stopped: after the first 4 MiB.
		bars := strings.Split(res.stderr[:stop], "\r")
		last := bars[len(bars)-1]
		if m := percent.FindStringSubmatch(last); m == nil || m[1] != "49" {
			t.Errorf("%s: the bar's last state %q, want 49%%", args[0], last)
		}
		if !strings.Contains(res.stderr[stop:fail], "stopped at 49%") {
			t.Errorf("%s: %q", args[0], res.stderr[stop:fail])
		}
	}
}
