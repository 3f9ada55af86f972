package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/schemas"
)

// FuzzParse: Parse never panics, fails only with ErrInvalid, and what it
// accepts re-encodes to the very bytes it was given (canonical form) and is
// valid against the whole schema (Parse checks entries[] in Go).
func FuzzParse(f *testing.F) {
	b, _ := sample().Encode()
	f.Add(b)
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Add([]byte("null"))
	f.Add(bytes.Replace(b, []byte("rules/zastava.yaml"), []byte("../zastava.yaml"), 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(in)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		out, err := m.Encode()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("accepted a manifest that does not re-encode to itself:\n%s\n%s", in, out)
		}
		if err := schemas.Validate(schemas.Manifest, in); err != nil {
			t.Fatalf("accepted a manifest the schema refuses: %v\n%s", err, in)
		}
	})
}
