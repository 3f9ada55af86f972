package site_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/site"
)

// craft writes a kit named name holding files (kit path → content), signed
// by key; role, when not "", is the role every entry claims (a lie for most
// paths), else each entry gets the role its path implies.
func craft(t *testing.T, key *kittest.Key, name, version string, files map[string]string, role manifest.Role) string {
	t.Helper()
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var content []kittest.Entry
	for _, p := range paths {
		content = append(content, kittest.File(p, []byte(files[p])))
	}
	m := kittest.ManifestFor(content)
	m.Name, m.Version = name, version
	for i := range m.Entries {
		m.Entries[i].Role = kittest.RoleOf(m.Entries[i].Path)
		if role != "" {
			m.Entries[i].Role = role
		}
	}
	return (&kittest.Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), name+"-"+version+".kit.tar.zst"))
}

// withoutTrace drops what a refused install may leave by design: its
// quarantine record and audit line.
func withoutTrace(snap string) string {
	var out []string
	for _, l := range strings.Split(snap, "\n") {
		if !strings.HasPrefix(l, "quarantine/") && !strings.HasPrefix(l, "audit.log ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// served returns the digest and kit the current generation serves tag under
// (ref.name annotations mapped with the host dropped).
func served(t *testing.T, root, tag string) (digest, kit string) {
	t.Helper()
	_, b, err := site.NewView(root).Images()
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		ref := d.Annotations[ocispec.AnnotationRefName]
		if _, rest, ok := strings.Cut(ref, "/"); ok && rest == tag {
			if digest != "" {
				t.Fatalf("tag %s served twice", tag)
			}
			digest, kit = d.Digest.String(), d.Annotations["dev.offkit.kit"]
		}
	}
	return digest, kit
}

// TestKitsCannotInterfere installs kit a, then tries kits that would
// change, hide or take over its files, images or tags; each is refused with
// exit 11 naming both kits before anything is written. Then a kit that
// shares nothing installs and upgrades beside a, and a is untouched.
func TestKitsCannotInterfere(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	a := kittest.SiteKit(t, key, "a", "1.0.0", map[string]string{
		"shared/values.yaml": "owner: a\n", "dir/x": "x", "leaf": "leaf", "stats.yaml": "s", "caf\u00e9.yaml": "nfc",
	}, "stellaops/app:1")
	if _, err := install(t, root, a.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	aDigest, aKit := served(t, root, "stellaops/app:1")
	if aKit != "a" || aDigest != a.Manifest.Images[0].Digest {
		t.Fatalf("kit a's image served as %s by %q", aDigest, aKit)
	}
	before := snapshot(t, root)

	hostile := []struct {
		name string
		kit  func() string
		// named: the refusal must name both kits and this path or tag
		// (empty for a kit verify may refuse first).
		named string
	}{
		{"same path", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/shared/values.yaml": "owner: b\n"}, "")
		}, "files/shared/values.yaml"},
		{"same path, lying role", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/shared/values.yaml": "owner: b\n"}, manifest.RoleImageBlob)
		}, ""},
		{"case twin", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/Shared/VALUES.yaml": "owner: b\n"}, "")
		}, "files/Shared/VALUES.yaml"},
		{"case twin by Unicode folding", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/\u017ftats.yaml": "b"}, "")
		}, "files/\u017ftats.yaml"},
		{"NFD twin", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/cafe\u0301.yaml": "nfd"}, "")
		}, "files/cafe\u0301.yaml"},
		{"file where a's folder is", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/dir": "b"}, "")
		}, "files/dir"},
		{"folder where a's file is", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{"files/leaf/y": "b"}, "")
		}, "files/leaf/y"},
		{"site metadata", func() string {
			return craft(t, key, "b", "1.0.0", map[string]string{".offkit/kits/a/manifest.json": "{}"}, "")
		}, ""},
		{"same tag from another registry", func() string {
			return kittest.SiteKit(t, key, "b", "1.0.0", nil, "stellaops/app:1").Path
		}, "stellaops/app:1"},
		{"same tag among other images", func() string {
			return kittest.SiteKit(t, key, "b", "1.0.0", map[string]string{"b/v": "b"}, "stellaops/other:1", "stellaops/app:1").Path
		}, "stellaops/app:1"},
	}
	for _, h := range hostile {
		_, err := install(t, root, h.kit(), key, nil)
		if errdef.ExitCode(err) != errdef.ExitInvalid {
			t.Fatalf("%s: want exit 11, got %v", h.name, err)
		}
		if h.named != "" && (!strings.Contains(err.Error(), "kit a") || !strings.Contains(err.Error(), "kit b") || !strings.Contains(err.Error(), h.named)) {
			t.Fatalf("%s: the refusal does not name both kits and %q: %v", h.name, h.named, err)
		}
		if now := withoutTrace(snapshot(t, root)); now != withoutTrace(before) {
			t.Fatalf("%s: the refused kit changed the site:\n%s\n---\n%s", h.name, withoutTrace(before), now)
		}
	}

	// A kit that shares nothing installs beside a, and upgrades with its own
	// tag; a's files, image and tag stay a's.
	b1 := kittest.SiteKit(t, key, "b", "1.0.0", map[string]string{"b/values.yaml": "owner: b\n"}, "stellaops/b:1")
	b2 := kittest.SiteKit(t, key, "b", "1.0.1", map[string]string{"b/values.yaml": "owner: b, v2\n"}, "stellaops/b:1")
	for _, k := range []string{b1.Path, b2.Path} {
		if _, err := install(t, root, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkConsistent(t, root)
	if d, k := served(t, root, "stellaops/app:1"); d != aDigest || k != "a" {
		t.Fatalf("kit a's tag now serves %s of kit %q", d, k)
	}
	if d, k := served(t, root, "stellaops/b:1"); d != b2.Manifest.Images[0].Digest || k != "b" {
		t.Fatalf("kit b's upgraded tag serves %s of kit %q", d, k)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "current/files/shared/values.yaml")); string(got) != "owner: a\n" {
		t.Fatalf("kit a's file now holds %q", got)
	}
	if st := state(t, root); len(st.Kits) != 2 {
		t.Fatalf("kits %+v", st.Kits)
	}
}
