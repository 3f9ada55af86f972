package manifest

import (
	"bytes"
	"strings"
	"testing"
)

// TestEncodesTo: Parse's canonical check compares a manifest with its
// re-encoding piece by piece; it must say yes to exactly Encode's bytes and
// no to any other, whichever byte differs, is missing or is added.
func TestEncodesTo(t *testing.T) {
	m := sample()
	for i, s := range tricky[:6] {
		m.Entries = append(m.Entries, Entry{Path: "files/" + s, Size: int64(i), SHA256: strings.Repeat("c", 64), MediaType: s, Role: RoleFile})
	}
	empty := sample()
	empty.Entries = nil
	for _, m := range []*Manifest{m, empty} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !m.encodesTo(b) {
			t.Fatal("refuses its own encoding")
		}
		for i := range b {
			bad := bytes.Clone(b)
			bad[i] ^= 0x20
			if m.encodesTo(bad) {
				t.Fatalf("accepts byte %d changed (%q)", i, b[max(0, i-20):i+1])
			}
			if m.encodesTo(append(bytes.Clone(b[:i]), b[i+1:]...)) {
				t.Fatalf("accepts byte %d left out", i)
			}
			if m.encodesTo(append(append(bytes.Clone(b[:i]), ' '), b[i:]...)) {
				t.Fatalf("accepts a space added at %d", i)
			}
		}
		if m.encodesTo(append(bytes.Clone(b), '\n')) || m.encodesTo(nil) {
			t.Fatal("accepts a byte added at the end, or nothing")
		}
	}
}
