package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// A manifest's debug[] that names a build id the kit does not carry, at a
// path that is not its own, out of order, or with an id no lookup accepts
// is refused (exit 11) naming the field; one that lists what the kit
// carries parses.
func TestDebugList(t *testing.T) {
	id := "0123456789abcdef0123"
	p := "debug/.build-id/01/23456789abcdef0123"
	good := func() *Manifest {
		m := sample()
		m.Entries = []Entry{
			{Path: p, Size: 1, SHA256: strings.Repeat("a", 64), Role: RoleDebug},
			{Path: p + ".debug", Size: 1, SHA256: strings.Repeat("b", 64), Role: RoleDebug},
		}
		m.Debug = []Debug{{BuildID: id, Path: p}, {BuildID: id, Path: p + ".debug", Arch: "amd64"}}
		return m
	}
	m := good()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("good debug[]: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(m *Manifest)
	}{
		{"id not carried", `debug[1] "ffffffffffffffffffff" path`, func(m *Manifest) {
			m.Debug[1] = Debug{BuildID: "ffffffffffffffffffff", Path: "debug/.build-id/ff/ffffffffffffffffff.debug"}
		}},
		{"file not carried", `debug[1] "0123456789abcdef0123" path`, func(m *Manifest) { m.Entries = m.Entries[:1] }},
		{"path of another id", `debug[0] "0123456789abcdef0123" path`, func(m *Manifest) { m.Debug[0].Path = "debug/.build-id/ff/ffffffffffffffffff" }},
		{"path outside the store", `debug[0] "0123456789abcdef0123" path`, func(m *Manifest) { m.Debug[0].Path = "debug/x" }},
		{"unsorted", `debug[1]`, func(m *Manifest) { m.Debug[0], m.Debug[1] = m.Debug[1], m.Debug[0] }},
		{"repeated", `debug[1]`, func(m *Manifest) { m.Debug[1] = m.Debug[0] }},
		{"short id", `debug[0] "0123" buildId`, func(m *Manifest) { m.Debug[0].BuildID = "0123" }},
	} {
		m := good()
		tc.edit(m)
		err := m.Validate()
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid naming %s", tc.name, err, tc.want)
		}
	}
}
