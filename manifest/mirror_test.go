package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

// mirrorSample is a manifest carrying one Concelier export with one domain.
func mirrorSample() *Manifest {
	m := sample()
	p := MirrorPrefix(MirrorConcelier, "20251123T000000Z")
	sum := strings.Repeat("c", 64)
	m.Entries = append(m.Entries,
		Entry{Path: p + "index.json", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "primary/bundle.json", Size: 7, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "primary/bundle.json.jws", Size: 9, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "primary/manifest.json", Size: 3, SHA256: sum, Role: RoleMirror},
	)
	SortEntries(m.Entries)
	created := time.Date(2025, 11, 23, 0, 0, 0, 0, time.UTC)
	m.Mirror = []Mirror{{
		Kind: MirrorConcelier, ExportID: "20251123T000000Z", Domains: []string{"primary"},
		Created: &created, GeneratedAt: &created,
		Files: []MirrorFile{{
			Domain: "primary", Path: p + "primary/bundle.json", SHA256: sum, Size: 7,
			Signature: &MirrorSignature{Path: p + "primary/bundle.json.jws", Kind: MirrorSigJWS, KeyID: "mirror-test", Alg: "EdDSA"},
		}},
	}}
	return m
}

func TestMirrorRoundTrip(t *testing.T) {
	b, err := mirrorSample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Mirror[0].Files[0].Signature.Kind; got != MirrorSigJWS {
		t.Fatalf("signature kind %q", got)
	}
	for _, name := range []string{`"kind": "concelier"`, `"exportId": "20251123T000000Z"`, `"generatedAt": "2025-11-23T00:00:00Z"`, `"keyId": "mirror-test"`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("manifest lacks %s", name)
		}
	}
}

func TestMirrorRefuses(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(m *Manifest)
	}{
		{"file not carried", "not an entry", func(m *Manifest) {
			m.Mirror[0].Files[0].Path = MirrorPrefix(MirrorConcelier, "20251123T000000Z") + "primary/other.json"
		}},
		{"signature not carried", "not an entry", func(m *Manifest) { m.Mirror[0].Files[0].Signature.Path += ".x" }},
		{"file of another domain", "directly in", func(m *Manifest) {
			m.Mirror[0].Domains = []string{"community", "primary"}
			m.Mirror[0].Files[0].Domain = "community"
		}},
		{"size lies", "kit's entry", func(m *Manifest) { m.Mirror[0].Files[0].Size = 8 }},
		{"no signature", "signature", func(m *Manifest) { m.Mirror[0].Files[0].Signature = nil }},
		{"bad kind", "kind", func(m *Manifest) { m.Mirror[0].Kind = "trivy" }},
		{"dotdot export", "exportId", func(m *Manifest) { m.Mirror[0].ExportID = ".." }},
		{"percent domain", "domains[0]", func(m *Manifest) { m.Mirror[0].Domains[0] = "a%2fb" }},
		{"export latest", "reserved", func(m *Manifest) { m.Mirror[0].ExportID = "latest" }},
		{"unlisted export entries", "no mirror[] export", func(m *Manifest) { m.Mirror = nil }},
		{"twice", "twice", func(m *Manifest) { m.Mirror = append(m.Mirror, m.Mirror[0]) }},
		{"unknown signature kind", "signature kind", func(m *Manifest) { m.Mirror[0].Files[0].Signature.Kind = "pgp" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mirrorSample()
			c.edit(m)
			err := m.Validate()
			if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

func TestCheckMirrorName(t *testing.T) {
	for _, ok := range []string{"primary", "20251123T000000Z", "consensus.openvex.json", "a_b-c"} {
		if err := CheckMirrorName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", ".hidden", "a/b", `a\b`, "a%2fb", "a b", "a\x00", "latest", strings.Repeat("a", MaxMirrorName+1), "é"} {
		if err := CheckMirrorName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
