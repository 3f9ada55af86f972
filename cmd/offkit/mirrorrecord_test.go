package main

import (
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
)

// A kit signed by a trusted key whose manifest carries a signed mirror file
// without its mirror[].files[] record (so without the signature it was
// checked against) is refused by verify, inspect and install with exit 11
// naming the entry, before any byte is installed or served.
func TestMirrorSignedFileWithoutRecord(t *testing.T) {
	r := newRunner(t)
	key := kittest.NewKey(t)
	_, pub := key.WriteKeys(t, t.TempDir())
	for _, tc := range []struct {
		kind, drop string
	}{
		{"concelier", "mirror/concelier/20251123T000000Z/mirror/community/bundle.json"},
		{"excititor", "mirror/excititor/20251123T000000Z/mirror/community/consensus.json"},
	} {
		x := kittest.SiteMirrorExport{Kind: tc.kind, ExportID: "20251123T000000Z", Domains: []string{"community", "primary"}, Created: "2025-11-23T00:00:00Z"}
		rec := x.Record()
		var kept []manifest.MirrorFile
		for _, f := range rec.Files {
			if f.Path != tc.drop {
				kept = append(kept, f)
			}
		}
		if len(kept) != len(rec.Files)-1 {
			t.Fatalf("%s: no record of %s to drop", tc.kind, tc.drop)
		}
		rec.Files = kept
		var entries []kittest.Entry
		for p, c := range x.Files() {
			entries = append(entries, kittest.File(p, []byte(c)))
		}
		m := kittest.ManifestFor(entries)
		m.Mirror = []manifest.Mirror{rec}
		byName := map[string]kittest.Entry{}
		for _, e := range entries {
			byName[e.Header.Name] = e
		}
		content := make([]kittest.Entry, 0, len(entries))
		for _, e := range m.Entries {
			content = append(content, byName[e.Path])
		}
		dir := t.TempDir()
		k := (&kittest.Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(dir, "hostile-1.0.0.kit.tar.zst"))
		root := filepath.Join(dir, "site")
		r.fails(11, []string{"verify", k, "--key", pub}, tc.drop, "mirror[].files[] record")
		r.fails(11, []string{"inspect", k, "--key", pub}, tc.drop)
		r.fails(11, []string{"install", k, "--root", root, "--key", pub}, tc.drop)
	}
}
