package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

func sample() *Manifest {
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	return &Manifest{
		SchemaVersion: 1, Name: "zastava-runtime", Version: "1.4.2",
		CreatedAt: time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC), ExpiresAt: &exp,
		Builder:     Builder{Name: "offkit", Version: "test"},
		Compression: Compression{Algorithm: "zstd", Level: 3, FrameSize: 4 << 20},
		Entries: []Entry{
			{Path: "dashboards/zastava.json", Size: 10, SHA256: strings.Repeat("a", 64), Role: RoleDashboard},
			{Path: "rules/zastava.yaml", Size: 20, SHA256: strings.Repeat("b", 64), Role: RoleRules},
		},
	}
}

// twoPaths gives the sample's two entries these paths, with the roles the
// paths imply, in kit order.
func twoPaths(m *Manifest, a, b string) {
	for i, p := range []string{a, b} {
		m.Entries[i].Path = p
		m.Entries[i].Role, _ = RoleOf(p)
	}
	SortEntries(m.Entries)
}

func TestParseRoundTrip(t *testing.T) {
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "zastava-runtime" || len(m.Entries) != 2 || m.TotalSize() != 30 {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(m *Manifest)
		raw   func(b []byte) []byte
		field string
	}{
		{name: "dotdot", edit: func(m *Manifest) { m.Entries[0].Path = "../x" }, field: `"../x"`},
		{name: "absolute", edit: func(m *Manifest) { m.Entries[0].Path = "/etc/passwd" }, field: "/etc/passwd"},
		{name: "backslash", edit: func(m *Manifest) { m.Entries[0].Path = `a\b` }, field: "backslash"},
		{name: "control", edit: func(m *Manifest) { m.Entries[0].Path = "a\x01b" }, field: "control"},
		{name: "nul", edit: func(m *Manifest) { m.Entries[0].Path = "a\x00b" }, field: "control"},
		{name: "case collision", edit: func(m *Manifest) { twoPaths(m, "rules/Zastava.yaml", "rules/zastava.yaml") }, field: "case"},
		{name: "unsorted", edit: func(m *Manifest) { m.Entries[0], m.Entries[1] = m.Entries[1], m.Entries[0] }, field: "sorted"},
		{name: "duplicate", edit: func(m *Manifest) { m.Entries[1] = m.Entries[0] }, field: "sorted"},
		{name: "head path", edit: func(m *Manifest) { m.Entries[0].Path = "SHA256SUMS" }, field: "reserved"},
		{name: "file is a dir", edit: func(m *Manifest) { twoPaths(m, "rules/a", "rules/a/x") }, field: "inside"},
		{name: "file is a dir, case folded", edit: func(m *Manifest) { twoPaths(m, "files/A", "files/a/x") }, field: "inside"},
		// Issue 6, finding 3: the site's own metadata and other reserved names.
		{name: "site metadata", edit: func(m *Manifest) { m.Entries[0].Path = ".offkit/state.json" }, field: "content folders"},
		{name: "site kit manifest", edit: func(m *Manifest) { m.Entries[0].Path = ".offkit/kits/other/manifest.json" }, field: "content folders"},
		{name: "top-level file", edit: func(m *Manifest) { m.Entries[0].Path = "README" }, field: "content folders"},
		{name: "unknown folder", edit: func(m *Manifest) { m.Entries[0].Path = "bin/sh" }, field: "content folders"},
		{name: "offkit head folder", edit: func(m *Manifest) { m.Entries[0].Path = "offkit/manifest.json" }, field: "reserved"},
		// Roles cannot lie: a rules file declared as an image blob.
		{name: "role lies", edit: func(m *Manifest) { m.Entries[1].Role = RoleImageBlob }, field: "role"},
		{name: "role of a blob lies", edit: func(m *Manifest) {
			m.Entries[0] = Entry{Path: "images/blobs/sha256/" + strings.Repeat("a", 64), Size: 1, SHA256: strings.Repeat("a", 64), Role: RoleFile}
		}, field: "role"},
		{name: "image notes", edit: func(m *Manifest) { m.Entries[0].Path = "images/notes.txt"; m.Entries[0].Role = RoleImageIndex }, field: "images/ holds only"},
		{name: "upper-case blob", edit: func(m *Manifest) {
			m.Entries[0] = Entry{Path: "images/blobs/sha256/" + strings.Repeat("A", 64), Size: 1, SHA256: strings.Repeat("a", 64), Role: RoleImageBlob}
		}, field: "64 lowercase"},
		{name: "sha512 blob", edit: func(m *Manifest) {
			m.Entries[0] = Entry{Path: "images/blobs/sha512/" + strings.Repeat("a", 128), Size: 1, SHA256: strings.Repeat("a", 64), Role: RoleImageBlob}
		}, field: "images/ holds only"},
		{name: "blob under the wrong digest", edit: func(m *Manifest) {
			m.Entries[0] = Entry{Path: "images/blobs/sha256/" + strings.Repeat("c", 64), Size: 1, SHA256: strings.Repeat("a", 64), Role: RoleImageBlob}
		}, field: "named by its digest"},
		{name: "300-byte name", edit: func(m *Manifest) { m.Entries[1].Path = "rules/" + strings.Repeat("x", 300) }, field: "element of 300 bytes"},
		// Names equal under Unicode normalisation or full case folding.
		{name: "nfc and nfd", edit: func(m *Manifest) { twoPaths(m, "files/caf\u00e9", "files/cafe\u0301") }, field: "collides"},
		{name: "long s", edit: func(m *Manifest) { twoPaths(m, "files/ss", "files/\u017fs") }, field: "collides"},
		{name: "kelvin", edit: func(m *Manifest) { twoPaths(m, "files/k", "files/\u212a") }, field: "collides"},
		// Delta fields, until delta kits are built.
		{name: "base", edit: func(m *Manifest) {
			m.Base = &Base{Name: "x", Version: "1.0.0", ManifestDigest: "sha256:" + strings.Repeat("a", 64)}
		}, field: "base"},
		{name: "in base", edit: func(m *Manifest) { m.Entries[0].InBase = true }, field: "inBase"},
		{name: "terabytes", edit: func(m *Manifest) { m.Entries[0].Size = 1 << 50; m.Entries[1].Size = 1 << 50 }, field: "larger"},
		{name: "bad hex", edit: func(m *Manifest) { m.Entries[0].SHA256 = "XYZ" }, field: "/entries/0/sha256"},
		{name: "bad role", edit: func(m *Manifest) { m.Entries[0].Role = "weird" }, field: "/entries/0/role"},
		{name: "not semver", edit: func(m *Manifest) { m.Version = "latest" }, field: "/version"},
		{name: "unknown key", raw: func(b []byte) []byte { return []byte(strings.Replace(string(b), `"name"`, `"evil": 1, "name"`, 1)) }, field: "evil"},
		{name: "not canonical", raw: func(b []byte) []byte { return []byte(strings.Replace(string(b), "  ", "    ", 1)) }, field: "canonical"},
		{name: "malformed", raw: func(b []byte) []byte { return b[:len(b)/2] }, field: "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := sample()
			if c.edit != nil {
				c.edit(m)
			}
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if c.raw != nil {
				b = c.raw(b)
			}
			_, err = Parse(b)
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %q", err, c.field)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	b := make([]byte, MaxManifestSize+1)
	if _, err := Parse(b); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("got %v", err)
	}
}

func TestParseSpec(t *testing.T) {
	good := `
name: zastava-runtime
version: 1.4.2
createdAt: 2025-10-20T00:00:00Z
images:
  - ref: registry.stella-ops.org/stellaops/zastava-observer:1.4.2
    layout: image-layout
rules:
  - src: rules/zastava-runtime.rules.yaml
`
	s, err := ParseSpec("kit.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "zastava-runtime" || len(s.Images) != 1 || s.Images[0].Layout != "image-layout" {
		t.Fatalf("%+v", s)
	}
	bad := []struct{ doc, field string }{
		{"name: x\nversion: 1.0.0\nbogus: 1\n", "/"},
		{"version: 1.0.0\n", "name"},
		{"name: x\nversion: one\n", "/version"},
		{"name: x\nversion: 1.0.0\nimages:\n  - layout: foo\n", "/images/0"},
		{"name: x\nversion: 1.0.0\nimages:\n  - ref: a\n    platforms: [Linux]\n", "/images/0/platforms/0"},
		{"name: x\nversion: 1.0.0\nrules:\n  - src: a\n    extra: b\n", "/rules/0"},
		{"name: x\nversion: 1.0.0\nimages:\n  - ref: a\n  - ref: a\n", "/images/1/ref"},
		{"name: x\nversion: 1.0.0\ncreatedAt: 2025-01-02T00:00:00Z\nexpiresAt: 2025-01-01T00:00:00Z\n", "/expiresAt"},
		{"name: [\n", "kit.yaml"},
	}
	for _, c := range bad {
		_, err := ParseSpec("kit.yaml", []byte(c.doc))
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("spec %q: got %v, want ErrInvalid naming %s", c.doc, err, c.field)
		}
	}
}

func signedSample() *Manifest {
	m := sample()
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	m.Images = []Image{{
		Reference: "registry.example/stellaops/zastava-observer:1.4.2", Digest: d("1"),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Platforms: []string{"linux/amd64"},
		Signatures: []string{d("2")},
		SignedBy:   []ImageSignature{{KeyID: d("3"), Signature: d("2"), Payload: d("4")}},
	}}
	return m
}

func TestImageSignedByCanonical(t *testing.T) {
	b, err := signedSample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `      "signatures": [
        "sha256:2222222222222222222222222222222222222222222222222222222222222222"
      ],
      "signedBy": [
        {
          "keyId": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
          "signature": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
          "payload": "sha256:4444444444444444444444444444444444444444444444444444444444444444"
        }
      ]
    }
  ]
}
`
	if !strings.HasSuffix(string(b), want) {
		t.Fatalf("encoding ends\n%s\nwant\n%s", b[len(b)-len(want):], want)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Images[0].SignedBy; len(got) != 1 || got[0] != signedSample().Images[0].SignedBy[0] {
		t.Fatalf("signedBy = %+v", got)
	}

	for _, c := range []struct {
		name  string
		edit  func(sb *ImageSignature)
		raw   func(b []byte) []byte
		field string
	}{
		{name: "signature not carried", edit: func(sb *ImageSignature) { sb.Signature = "sha256:" + strings.Repeat("5", 64) }, field: "not one of the image's signatures"},
		{name: "bad key id", edit: func(sb *ImageSignature) { sb.KeyID = "3333" }, field: "/images/0/signedBy/0/keyId"},
		{name: "no payload", raw: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `,
          "payload": "sha256:4444444444444444444444444444444444444444444444444444444444444444"`, "", 1))
		}, field: "/images/0/signedBy/0"},
		{name: "empty", raw: func(b []byte) []byte {
			s := string(b)
			i, j := strings.Index(s, `"signedBy": [`), strings.LastIndex(s, "]\n    }")
			return []byte(s[:i] + `"signedBy": [` + s[j:])
		}, field: "/images/0/signedBy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := signedSample()
			if c.edit != nil {
				c.edit(&m.Images[0].SignedBy[0])
			}
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if c.raw != nil {
				b = c.raw(b)
			}
			_, err = Parse(b)
			if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("got %v, want ErrInvalid naming %q", err, c.field)
			}
		})
	}
}
