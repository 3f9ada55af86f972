package manifest

import "fmt"

// validateDebug checks debug[] against the entries: each build id is
// lowercase hex of 8 to 64 bytes, its path is debug/.build-id/<aa>/<rest>
// or <aa>/<rest>.debug for that id and an entry of the kit, and the list is
// sorted by build id then path without repeats (docs/debug.md). A kit whose
// debug[] names a file it does not carry is refused.
func (m *Manifest) validateDebug() error {
	if len(m.Debug) == 0 {
		return nil
	}
	have := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		have[e.Path] = true
	}
	for i, d := range m.Debug {
		field := fmt.Sprintf("debug[%d] %q", i, d.BuildID)
		if !debugID(d.BuildID) {
			return invalid(field+" buildId", "not lowercase hex of 8 to 64 bytes")
		}
		exe := "debug/.build-id/" + d.BuildID[:2] + "/" + d.BuildID[2:]
		if d.Path != exe && d.Path != exe+".debug" {
			return invalid(field+" path", "%q, but build id %s is %s.debug or %s", d.Path, d.BuildID, exe, exe)
		}
		if !have[d.Path] {
			return invalid(field+" path", "%q is not an entry of the kit", d.Path)
		}
		if i > 0 {
			p := m.Debug[i-1]
			if p.BuildID > d.BuildID || p.BuildID == d.BuildID && p.Path >= d.Path {
				return invalid(field, "debug[] is not sorted by build id then path, or a path is repeated")
			}
		}
	}
	return nil
}

// debugID reports whether s is a build id a .build-id tree can name: an
// even number of 16 to 128 lowercase hex digits.
func debugID(s string) bool {
	if len(s) < 16 || len(s) > 128 || len(s)%2 != 0 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
