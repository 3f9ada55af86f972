package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/schemas"
)

// TestParseAgreesWithSchema: Parse checks entries[] in Go and the schema
// only on the rest of the manifest, so each way an entry can break the
// schema's rules is given here as a whole document to both: what the
// schema refuses, Parse refuses (with ErrInvalid), and the sample both
// accept.
func TestParseAgreesWithSchema(t *testing.T) {
	good, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Validate(schemas.Manifest, good); err != nil {
		t.Fatalf("schema refuses the sample: %v", err)
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("Parse refuses the sample: %v", err)
	}
	entry := `"path": "dashboards/zastava.json",
      "size": 10,
      "sha256": "` + strings.Repeat("a", 64) + `",
      "role": "dashboard"`
	if !strings.Contains(string(good), entry) {
		t.Fatalf("sample's first entry is not\n%s\nin\n%s", entry, good)
	}
	for _, c := range []struct{ name, entry string }{
		{"upper-case hex", strings.Replace(entry, strings.Repeat("a", 64), strings.Repeat("A", 64), 1)},
		{"short hex", strings.Replace(entry, strings.Repeat("a", 64), strings.Repeat("a", 63), 1)},
		{"long hex", strings.Replace(entry, strings.Repeat("a", 64), strings.Repeat("a", 65), 1)},
		{"sha256 with prefix", strings.Replace(entry, `"`+strings.Repeat("a", 64), `"sha256:`+strings.Repeat("a", 57), 1)},
		{"no sha256", strings.Replace(entry, `"sha256": "`+strings.Repeat("a", 64)+`",`, ``, 1)},
		{"sha256 null", strings.Replace(entry, `"`+strings.Repeat("a", 64)+`"`, `null`, 1)},
		{"sha256 number", strings.Replace(entry, `"`+strings.Repeat("a", 64)+`"`, `7`, 1)},
		{"unknown role", strings.Replace(entry, `"dashboard"`, `"weird"`, 1)},
		{"empty role", strings.Replace(entry, `"dashboard"`, `""`, 1)},
		{"no role", strings.Replace(entry, `,
      "role": "dashboard"`, ``, 1)},
		{"role number", strings.Replace(entry, `"dashboard"`, `1`, 1)},
		{"negative size", strings.Replace(entry, `"size": 10`, `"size": -1`, 1)},
		{"fractional size", strings.Replace(entry, `"size": 10`, `"size": 10.5`, 1)},
		{"size string", strings.Replace(entry, `"size": 10`, `"size": "10"`, 1)},
		{"no size", strings.Replace(entry, `"size": 10,`, ``, 1)},
		{"empty path", strings.Replace(entry, `"dashboards/zastava.json"`, `""`, 1)},
		{"path of 1025 characters", strings.Replace(entry, `"dashboards/zastava.json"`, `"dashboards/`+strings.Repeat("x", 1014)+`"`, 1)},
		{"no path", strings.Replace(entry, `"path": "dashboards/zastava.json",`, ``, 1)},
		{"mediaType of 256 characters", strings.Replace(entry, `"role"`, `"mediaType": "`+strings.Repeat("m", 256)+`",
      "role"`, 1)},
		{"mediaType number", strings.Replace(entry, `"role"`, `"mediaType": 3,
      "role"`, 1)},
		{"inBase string", entry + `,
      "inBase": "yes"`},
		{"unknown field", entry + `,
      "mode": 420`},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := []byte(strings.Replace(string(good), entry, c.entry, 1))
			if string(doc) == string(good) {
				t.Fatal("case changes nothing")
			}
			if err := schemas.Validate(schemas.Manifest, doc); err == nil {
				t.Fatalf("schema accepts the case: it is not a schema refusal")
			}
			if _, err := Parse(doc); !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("schema refuses it, Parse says %v", err)
			}
		})
	}
}
