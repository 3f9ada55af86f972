package verify_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// Kits whose .build-id store lies, each signed with the trusted key so
// that only the content is hostile: verify (and install, through it)
// refuses each with exit 11, naming the entry and the ids; the honest kit
// next to them verifies.
func TestVerifyDebugStore(t *testing.T) {
	key := kittest.NewKey(t)
	a, b := strings.Repeat("a1", 20), strings.Repeat("b2", 20)
	pathOf := func(id, suffix string) string { return "debug/.build-id/" + id[:2] + "/" + id[2:] + suffix }
	elfA := kittest.DebugELF(t, a, 0)
	// A big file: the header in its first MiB, the section table in its
	// last, the bytes between never kept.
	bigA := kittest.DebugELF(t, a, 3<<20)
	for _, tc := range []struct {
		name  string
		craft kittest.DebugCraft
		want  []string // in the error; nil: verifies
	}{
		{"honest", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA, pathOf(a, ""): elfA}}, nil},
		{"honest, 3 MiB", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): bigA}}, nil},
		{"another id's file", kittest.DebugCraft{Files: map[string][]byte{pathOf(b, ".debug"): elfA}},
			[]string{pathOf(b, ".debug"), "named for build id " + b, "its build id is " + a}},
		{"another id's executable", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA, pathOf(b, ""): bigA}},
			[]string{pathOf(b, ""), "its build id is " + a}},
		{"not ELF", kittest.DebugCraft{Files: map[string][]byte{pathOf(b, ".debug"): []byte("not an ELF file at all")}},
			[]string{pathOf(b, ".debug"), "not an ELF file"}},
		{"no note", kittest.DebugCraft{Files: map[string][]byte{pathOf(b, ".debug"): []byte("\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 57))}},
			[]string{pathOf(b, ".debug"), "no GNU build id note"}},
		{"unlisted, in no debug manifest", kittest.DebugCraft{Files: map[string][]byte{pathOf(b, ".debug"): elfA}, NoDebugList: true, NoDebugManifest: true},
			[]string{pathOf(b, ".debug"), "its build id is " + a}},
		{"a build id the kit does not carry", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA},
			EditDebugManifest: func(dm *debugstore.Manifest) {
				f := dm.Files[0]
				f.BuildID, f.File = b, strings.TrimPrefix(pathOf(b, ".debug"), "debug/")
				dm.Files = append(dm.Files, f)
			}},
			[]string{debugstore.ManifestPath, b, "not an entry of the kit"}},
		{"a file left out", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA, pathOf(a, ""): elfA},
			EditDebugManifest: func(dm *debugstore.Manifest) { dm.Files = dm.Files[:1] }},
			[]string{debugstore.ManifestPath, "1 files, but the kit manifest's debug[] lists 2"}},
		{"other bytes", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA},
			EditDebugManifest: func(dm *debugstore.Manifest) { dm.Files[0].SHA256 = strings.Repeat("0", 64) }},
			[]string{debugstore.ManifestPath, "but the entry"}},
		{"no debug manifest", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA}, NoDebugManifest: true},
			[]string{"debug[] lists 1 files", "carries no " + debugstore.ManifestPath}},
		{"debug manifest not canonical", kittest.DebugCraft{Files: map[string][]byte{pathOf(a, ".debug"): elfA},
			DebugManifestBytes: []byte(`{"schemaVersion":1,"files":[]}`)},
			[]string{debugstore.ManifestPath, "canonical"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.craft
			c.Key = key
			k := c.Write(t, t.TempDir())
			_, err := verify.File(context.Background(), k, opts(key))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("an honest kit: %v", err)
				}
				return
			}
			if errdef.ExitCode(err) != 11 {
				t.Fatalf("exit %d, want 11: %v", errdef.ExitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// install refuses it through verify, and installs nothing.
			root := filepath.Join(t.TempDir(), "site")
			s, err := site.Open(root, true)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			o := site.InstallOptions{Keys: opts(key).Keys, Now: opts(key).Now}
			if _, err := s.Install(context.Background(), k, o); errdef.ExitCode(err) != 11 {
				t.Errorf("install: exit %d: %v", errdef.ExitCode(err), err)
			}
			if _, _, err := site.NewView(root).OpenGeneration(); err == nil {
				t.Errorf("install left a generation")
			}
		})
	}
}
