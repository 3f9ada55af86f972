package authority_test

import (
	"fmt"
	"time"

	"github.com/offkit/offkit/authority"
)

// The tolerance timeline of the package doc: metadata fetched at 12:00:00
// with max-age=300 and the default offline tolerance of 10 minutes.
func ExampleEvaluate() {
	fetched := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var r authority.Resilience // defaults: fallback on, tolerance 00:10:00
	for _, at := range []string{"12:00:00", "12:05:00", "12:05:01", "12:15:00", "12:15:01"} {
		t, _ := time.Parse("15:04:05", at)
		now := fetched.Add(t.Sub(time.Date(0, 1, 1, 12, 0, 0, 0, time.UTC)))
		st := authority.Evaluate(fetched, 5*time.Minute, r, now)
		fmt.Printf("%s %-16s %s left\n", at, st.State, st.Remaining)
	}
	// Output:
	// 12:00:00 fresh            15m0s left
	// 12:05:00 fresh            10m0s left
	// 12:05:01 within tolerance 9m59s left
	// 12:15:00 within tolerance 0s left
	// 12:15:01 expired          0s left
}
