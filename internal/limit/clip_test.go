package limit

import (
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	for _, c := range []struct {
		s    string
		max  int
		want string
	}{
		{"kid", 3, "kid"},
		{"kid-1", 3, "kid…"},
		{strings.Repeat("a", 100<<10), 8, "aaaaaaaa…"},
		{"aé", 2, "a…"}, // é is two bytes: not split
		{"éé", 1, "…"},
	} {
		if got := Clip(c.s, c.max); got != c.want {
			t.Errorf("Clip(%.20q, %d) = %q, want %q", c.s, c.max, got, c.want)
		}
	}
}
