package manifest

import (
	"bytes"
	"strings"
	"testing"
)

// tricky are strings encoding/json escapes: quotes, backslashes, HTML
// characters, controls, DEL, invalid UTF-8, U+2028/2029, and non-ASCII it
// leaves as is.
var tricky = []string{
	`a"b`, `a\b`, "a<b>&c", "a\x00b", "a\nb\tc\rd", "a\x1fb", "a\x7fb", "a\xffb", "a\xc3", "a\u2028b\u2029",
	"café", "cafe\u0301", "日本語", "\U0001F600", "", "plain/ascii-path_1.0.txt",
}

// TestEncodeMatchesEncodingJSON: Encode writes entries by hand; the bytes
// must be encoding/json's for every field of an entry, whatever it holds.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	m := sample()
	for i, s := range tricky {
		m.Entries = append(m.Entries,
			Entry{Path: "files/" + s, Size: int64(i) << 40, SHA256: s, Role: Role(s)},
			Entry{Path: s, Size: -int64(i), SHA256: strings.Repeat("c", 64), MediaType: s, Role: RoleFile, InBase: i%2 == 0})
	}
	m.Images = []Image{{Reference: "x/y:1", Digest: "sha256:" + strings.Repeat("d", 64), MediaType: "application/vnd.oci.image.index.v1+json"}}
	checkEncode(t, m)
	m.Entries = nil
	checkEncode(t, m)
	m.Entries = []Entry{}
	checkEncode(t, m)
	// A string elsewhere that looks like the empty entries[] it searches for.
	m = sample()
	m.Builder.Name = entriesEmpty
	m.Builder.Version = `"entries": [],`
	checkEncode(t, m)
}

func checkEncode(t *testing.T, m *Manifest) {
	t.Helper()
	got, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.encodeJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from encoding/json:\n%s\nwant\n%s", got, want)
	}
}

// FuzzEncodeEntries: for any entry, Encode writes encoding/json's bytes.
func FuzzEncodeEntries(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, s, s, s, int64(len(s)), len(s)%2 == 0)
	}
	f.Fuzz(func(t *testing.T, path, sum, mediaType, role string, size int64, inBase bool) {
		m := sample()
		m.Entries = append(m.Entries, Entry{Path: path, Size: size, SHA256: sum, MediaType: mediaType, Role: Role(role), InBase: inBase})
		checkEncode(t, m)
	})
}
