package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// excititorSample adds to mirrorSample an Excititor export whose domain
// community carries two export files, each with its record.
func excititorSample() *Manifest {
	m := mirrorSample()
	p := MirrorPrefix(MirrorExcititor, "20251123T000000Z")
	sum := strings.Repeat("e", 64)
	m.Entries = append(m.Entries,
		Entry{Path: p + "index.json", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "community/index.json", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "community/consensus.json", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "community/consensus.json.jws", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "community/consensus.openvex.json", Size: 5, SHA256: sum, Role: RoleMirror},
		Entry{Path: p + "community/consensus.openvex.json.jws", Size: 5, SHA256: sum, Role: RoleMirror},
	)
	SortEntries(m.Entries)
	rec := Mirror{Kind: MirrorExcititor, ExportID: "20251123T000000Z", Domains: []string{"community"}}
	for _, f := range []struct{ file, format string }{{"consensus.json", "json"}, {"consensus.openvex.json", "openvex"}} {
		rec.Files = append(rec.Files, MirrorFile{
			Domain: "community", Path: p + "community/" + f.file, SHA256: sum, Size: 5, ExportKey: "consensus", Format: f.format,
			Signature: &MirrorSignature{Path: p + "community/" + f.file + ".jws", Kind: MirrorSigJWS, KeyID: "mirror-test", Alg: "ES256"},
		})
	}
	m.Mirror = append(m.Mirror, rec)
	return m
}

// Every signed file a kit carries under a mirror export has its files[]
// record with the signature the build checked it against, and the export
// holds nothing offkit build would not carry: a kit signed by a trusted key
// but not built by offkit build (or edited) is refused naming the entry.
func TestMirrorSignedFilesHaveRecords(t *testing.T) {
	if err := excititorSample().Validate(); err != nil {
		t.Fatalf("the sample as offkit build writes it: %v", err)
	}
	c := MirrorPrefix(MirrorConcelier, "20251123T000000Z")
	x := MirrorPrefix(MirrorExcititor, "20251123T000000Z")
	sum := strings.Repeat("d", 64)
	add := func(m *Manifest, paths ...string) {
		for _, p := range paths {
			m.Entries = append(m.Entries, Entry{Path: p, Size: 1, SHA256: sum, Role: RoleMirror})
		}
		SortEntries(m.Entries)
	}
	drop := func(m *Manifest, kind int, path string) {
		var kept []MirrorFile
		for _, f := range m.Mirror[kind].Files {
			if f.Path != path {
				kept = append(kept, f)
			}
		}
		m.Mirror[kind].Files = kept
	}
	for _, tc := range []struct {
		name, want string
		edit       func(m *Manifest)
	}{
		{"concelier bundle without a record", c + "primary/bundle.json", func(m *Manifest) { drop(m, 0, c+"primary/bundle.json") }},
		{"bundle of a second domain without a record", c + "community/bundle.json", func(m *Manifest) {
			m.Mirror[0].Domains = []string{"community", "primary"}
			add(m, c+"community/manifest.json", c+"community/bundle.json", c+"community/bundle.json.jws")
		}},
		{"excititor export file without a record", x + "community/consensus.openvex.json", func(m *Manifest) {
			drop(m, 1, x+"community/consensus.openvex.json")
		}},
		{"excititor file and signature added", x + "community/extra.json", func(m *Manifest) {
			add(m, x+"community/extra.json", x+"community/extra.json.jws")
		}},
		{"a signature no record names", x + "community/orphan.json.jws", func(m *Manifest) { add(m, x+"community/orphan.json.jws") }},
		{"another file in a concelier domain", c + "primary/notes.json", func(m *Manifest) { add(m, c+"primary/notes.json") }},
		{"a folder of a domain not listed", c + "community/bundle.json", func(m *Manifest) {
			add(m, c+"community/manifest.json", c+"community/bundle.json", c+"community/bundle.json.jws")
		}},
		{"a deeper path", c + "primary/sub/bundle.json", func(m *Manifest) { add(m, c+"primary/sub/bundle.json") }},
		{"a file beside the index", c + "bundle.json", func(m *Manifest) { add(m, c+"bundle.json") }},
		{"a listed domain the kit does not carry", c + "community/manifest.json", func(m *Manifest) {
			m.Mirror[0].Domains = []string{"community", "primary"}
		}},
		// Beside the bundle's record, so that every carried file still has
		// one: only the record's name is wrong.
		{"a record of the manifest beside the bundle's", `a concelier signed file is a domain's bundle.json, not "manifest.json"`, func(m *Manifest) {
			f := m.Mirror[0].Files[0]
			f.Signature = &MirrorSignature{Path: c + "primary/manifest.json.jws", Kind: MirrorSigJWS, KeyID: "mirror-test", Alg: "EdDSA"}
			f.Path, f.Size, f.SHA256 = c+"primary/manifest.json", 3, strings.Repeat("c", 64)
			m.Mirror[0].Files = append(m.Mirror[0].Files, f)
			add(m, c+"primary/manifest.json.jws")
		}},
		{"a signature that is another file", "want " + `"` + c + "primary/bundle.json.jws", func(m *Manifest) {
			m.Mirror[0].Files[0].Signature.Path = c + "primary/manifest.json"
		}},
		{"an excititor record of the domain index beside the export files", `not the domain index or a signature ("index.json")`, func(m *Manifest) {
			f := m.Mirror[1].Files[0]
			f.Signature = &MirrorSignature{Path: x + "community/index.json.jws", Kind: MirrorSigJWS, KeyID: "mirror-test", Alg: "ES256"}
			f.Path = x + "community/index.json"
			m.Mirror[1].Files = append(m.Mirror[1].Files, f)
			add(m, x+"community/index.json.jws")
		}},
	} {
		m := excititorSample()
		tc.edit(m)
		err := m.Validate()
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalid naming %q", tc.name, err, tc.want)
		}
	}
}
