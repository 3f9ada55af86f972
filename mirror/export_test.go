package mirror_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

const exportID = "20251123T000000Z"

type testKeys struct {
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
	set *mirror.KeySet
}

func newKeys(t testing.TB) *testKeys {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := mirror.NewKeySet(
		mirror.Key{ID: "mirror-ed25519", Public: ed.Public()},
		mirror.Key{ID: "mirror-p256", Public: &ec.PublicKey},
	)
	if err != nil {
		t.Fatal(err)
	}
	return &testKeys{ed: ed, ec: ec, set: set}
}

func (k *testKeys) jws() mirrortest.Signer {
	return mirrortest.Signer{Kind: mirrortest.JWS, Key: k.ed, KeyID: "mirror-ed25519"}
}

func (k *testKeys) cosign() mirrortest.Signer {
	return mirrortest.Signer{Kind: mirrortest.Cosign, Key: k.ec}
}

func (k *testKeys) es256() mirrortest.Signer {
	return mirrortest.Signer{Kind: mirrortest.JWS, Key: k.ec, KeyID: "mirror-p256"}
}

// concelier writes a Concelier export of two domains (primary: Ed25519
// JWS; community: cosign ECDSA) and links latest to it.
func concelier(t testing.TB, k *testKeys) string {
	t.Helper()
	root := t.TempDir()
	err := mirrortest.Write(root, "concelier", exportID, []mirrortest.Domain{
		{ID: "primary", DisplayName: "Primary", Created: "2025-11-23T00:00:00Z", Signer: k.jws(),
			Bundle: []byte(`{"generatedAt":"2025-11-23T00:05:00.5Z","advisories":[{"id":"CVE-2025-0001"}],"extra":{"x":1}}`)},
		{ID: "community", DisplayName: "Community", Created: "2025-11-22T00:00:00Z", Signer: k.cosign(),
			Bundle: []byte(`{"generatedAt":"2025-11-22T00:00:00Z","advisories":[]}`)},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func excititor(t testing.TB, k *testKeys) string {
	t.Helper()
	root := t.TempDir()
	err := mirrortest.Write(root, "excititor", exportID, []mirrortest.Domain{
		{ID: "community", DisplayName: "Community", GeneratedAt: "2025-11-23T01:00:00Z", Signer: k.es256(), Exports: []mirrortest.ExportFile{
			{Key: "consensus", Format: "json", File: "consensus.json", Data: []byte(`{"statements":[]}`)},
			{Key: "consensus", Format: "openvex", File: "consensus.openvex.json", Data: []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}`)},
			{Key: "claims", Format: "jsonl", File: "claims.jsonl", Data: []byte("{\"a\":1}\n{\"a\":2}\n")},
		}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestOpenConcelier(t *testing.T) {
	k := newKeys(t)
	root := concelier(t, k)
	e, err := mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorConcelier, Root: root, Keys: k.set})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != exportID || strings.Join(e.Domains, ",") != "community,primary" {
		t.Fatalf("export %s domains %v", e.ID, e.Domains)
	}
	if e.Created.Format(time.RFC3339) != "2025-11-23T00:00:00Z" || e.GeneratedAt.Format(time.RFC3339) != "2025-11-23T00:05:00Z" {
		t.Errorf("created %v generatedAt %v", e.Created, e.GeneratedAt)
	}
	var rels []string
	for _, f := range e.Files {
		rels = append(rels, f.Rel)
	}
	want := "mirror/community/bundle.json mirror/community/bundle.json.jws mirror/community/manifest.json mirror/index.json mirror/primary/bundle.json mirror/primary/bundle.json.jws mirror/primary/manifest.json"
	if got := strings.Join(rels, " "); got != want {
		t.Errorf("files\n%s\nwant\n%s", got, want)
	}
	if len(e.Signed) != 2 {
		t.Fatalf("signed %+v", e.Signed)
	}
	com, pri := e.Signed[0], e.Signed[1]
	if com.Path != "mirror/concelier/"+exportID+"/mirror/community/bundle.json" || com.Signature.Kind != "cosign" || com.Signature.KeyID != "mirror-p256" || com.Signature.Alg != "ES256" {
		t.Errorf("community %+v %+v", com, com.Signature)
	}
	if pri.Signature.Kind != "jws" || pri.Signature.KeyID != "mirror-ed25519" || pri.Signature.Alg != "EdDSA" || pri.Signature.Path != pri.Path+".jws" {
		t.Errorf("primary %+v %+v", pri, pri.Signature)
	}
	// A domain subset carries the index and that domain only.
	e, err = mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorConcelier, Root: root, Keys: k.set, Domains: []string{"primary"}})
	if err != nil || len(e.Files) != 4 || len(e.Signed) != 1 {
		t.Fatalf("subset: %v %+v", err, e)
	}
	_, err = mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorConcelier, Root: root, Keys: k.set, Domains: []string{"nope"}})
	if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown domain: %v", err)
	}
}

func TestOpenExcititor(t *testing.T) {
	k := newKeys(t)
	root := excititor(t, k)
	e, err := mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorExcititor, Root: root, Keys: k.set})
	if err != nil {
		t.Fatal(err)
	}
	if e.GeneratedAt.Format(time.RFC3339) != "2025-11-23T01:00:00Z" || e.Created != nil {
		t.Errorf("times %v %v", e.Created, e.GeneratedAt)
	}
	if len(e.Signed) != 3 {
		t.Fatalf("signed %+v", e.Signed)
	}
	for _, s := range e.Signed {
		if s.ExportKey == "" || s.Format == "" || s.Signature.Alg != "ES256" || s.Signature.KeyID != "mirror-p256" || s.Domain != "community" {
			t.Errorf("%+v %+v", s, s.Signature)
		}
	}
	// An export that is not what the domain index says.
	p := filepath.Join(root, exportID, "mirror", "community", "consensus.json")
	data := []byte(`{"statements":[1]}`)
	os.WriteFile(p, data, 0o644)
	sig, _ := k.es256().Sign("consensus.json", data)
	os.WriteFile(p+".jws", sig, 0o644)
	_, err = mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorExcititor, Root: root, Keys: k.set})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "consensus.json") {
		t.Errorf("index mismatch: %v", err)
	}
}

func TestResolveID(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"20251121T000000Z", "20251123T000000Z", "20251122T000000Z"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	check := func(sel, want string, sentinel error) {
		t.Helper()
		got, err := mirror.ResolveID(root, sel)
		if sentinel != nil {
			if !errors.Is(err, sentinel) {
				t.Errorf("ResolveID(%q) = %q, %v; want %v", sel, got, err, sentinel)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ResolveID(%q) = %q, %v; want %q", sel, got, err, want)
		}
	}
	check("", "20251123T000000Z", nil) // no link: the newest
	check("newest", "20251123T000000Z", nil)
	os.Symlink("20251122T000000Z", filepath.Join(root, "latest"))
	check("latest", "20251122T000000Z", nil)
	check("", "20251122T000000Z", nil)
	check("newest", "20251123T000000Z", nil)
	check("20251121T000000Z", "20251121T000000Z", nil)
	check("20991121T000000Z", "", errdef.ErrNotFound)
	check("../etc", "", errdef.ErrInvalid)
	check("a%2fb", "", errdef.ErrInvalid)
	os.Remove(filepath.Join(root, "latest"))
	os.Symlink("../elsewhere", filepath.Join(root, "latest"))
	check("latest", "", errdef.ErrInvalid)
	os.Remove(filepath.Join(root, "latest"))
	os.Symlink("/tmp", filepath.Join(root, "latest"))
	check("latest", "", errdef.ErrInvalid)
}

// TestOpenRefusesLayout: each hostile layout is refused with the file or
// field at fault and the documented exit code.
func TestOpenRefusesLayout(t *testing.T) {
	k := newKeys(t)
	m := func(root string, rel ...string) string {
		return filepath.Join(append([]string{root, exportID, "mirror"}, rel...)...)
	}
	writeIndex := func(root string, ids ...string) {
		var parts []string
		for _, id := range ids {
			parts = append(parts, `{"id":"`+id+`"}`)
		}
		os.WriteFile(m(root, "index.json"), []byte(`{"schemaVersion":1,"domains":[`+strings.Join(parts, ",")+`]}`), 0o644)
	}
	cases := []struct {
		name     string
		edit     func(root string)
		sentinel error
		want     string
	}{
		{"index lists a missing domain folder", func(r string) { writeIndex(r, "primary", "community", "ghost") }, errdef.ErrInvalid, `"ghost" is listed, but its folder`},
		{"domain folder not in the index", func(r string) { writeIndex(r, "primary") }, errdef.ErrInvalid, "community: a domain folder that mirror/index.json does not list"},
		{"domain id with ..", func(r string) { writeIndex(r, "..") }, errdef.ErrInvalid, "domains[0].id"},
		{"domain id with /", func(r string) { writeIndex(r, "primary/../../x") }, errdef.ErrInvalid, "domains[0].id"},
		{"domain id with %2f", func(r string) { writeIndex(r, "a%2fb") }, errdef.ErrInvalid, "domains[0].id"},
		{"domain listed twice", func(r string) { writeIndex(r, "primary", "primary", "community") }, errdef.ErrInvalid, "listed twice"},
		{"index not JSON", func(r string) { os.WriteFile(m(r, "index.json"), []byte("{"), 0o644) }, errdef.ErrInvalid, "index.json"},
		{"index schemaVersion 2", func(r string) {
			os.WriteFile(m(r, "index.json"), []byte(`{"schemaVersion":2,"domains":[]}`), 0o644)
		}, errdef.ErrInvalid, "schemaVersion"},
		{"no index", func(r string) { os.Remove(m(r, "index.json")) }, errdef.ErrInvalid, "index.json: missing"},
		{"symlinked bundle", func(r string) {
			os.Remove(m(r, "primary", "bundle.json"))
			os.Symlink("/etc/passwd", m(r, "primary", "bundle.json"))
		}, errdef.ErrInvalid, "primary/bundle.json: a symbolic link"},
		{"symlinked domain folder", func(r string) {
			os.Rename(m(r, "community"), filepath.Join(r, "elsewhere"))
			os.Symlink(filepath.Join(r, "elsewhere"), m(r, "community"))
		}, errdef.ErrInvalid, "community: a symbolic link"},
		{"symlinked mirror folder", func(r string) {
			os.Rename(m(r), filepath.Join(r, "elsewhere"))
			os.Symlink(filepath.Join(r, "elsewhere"), m(r))
		}, errdef.ErrInvalid, "mirror: a symbolic link"},
		{"missing bundle", func(r string) { os.Remove(m(r, "primary", "bundle.json")) }, errdef.ErrInvalid, "primary/bundle.json: missing"},
		{"missing signature", func(r string) { os.Remove(m(r, "primary", "bundle.json.jws")) }, errdef.ErrInvalid, "primary/bundle.json.jws: missing"},
		{"missing manifest", func(r string) { os.Remove(m(r, "primary", "manifest.json")) }, errdef.ErrInvalid, "primary/manifest.json: missing"},
		{"extra file", func(r string) { os.WriteFile(m(r, "primary", "notes.txt"), nil, 0o644) }, errdef.ErrInvalid, "notes.txt: not part of the export layout"},
		{"unsafe file name", func(r string) { os.WriteFile(m(r, "primary", "a%2fb"), nil, 0o644) }, errdef.ErrInvalid, "unsafe name"},
		{"manifest names another domain", func(r string) {
			os.WriteFile(m(r, "primary", "manifest.json"), []byte(`{"domainId":"community"}`), 0o644)
		}, errdef.ErrInvalid, "domainId"},
		{"created not a time", func(r string) {
			os.WriteFile(m(r, "primary", "manifest.json"), []byte(`{"domainId":"primary","created":"yesterday"}`), 0o644)
		}, errdef.ErrInvalid, "created"},
		{"bundle not JSON", func(r string) {
			b := []byte(`{"advisories":[}`)
			os.WriteFile(m(r, "primary", "bundle.json"), b, 0o644)
			sig, _ := k.jws().Sign("bundle.json", b)
			os.WriteFile(m(r, "primary", "bundle.json.jws"), sig, 0o644)
		}, errdef.ErrInvalid, "primary/bundle.json: not JSON"},
		{"bundle changed after signing", func(r string) {
			os.WriteFile(m(r, "primary", "bundle.json"), []byte(`{"advisories":[]}`), 0o644)
		}, errdef.ErrSignature, "primary/bundle.json.jws"},
		{"cosign bundle changed after signing", func(r string) {
			os.WriteFile(m(r, "community", "bundle.json"), []byte(`{"advisories":[]}`), 0o644)
		}, errdef.ErrSignature, "community/bundle.json.jws: cosign signature does not verify"},
		{"no export folder", func(r string) { os.RemoveAll(filepath.Join(r, exportID)) }, errdef.ErrNotFound, exportID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := concelier(t, k)
			c.edit(root)
			_, err := mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorConcelier, Root: root, Keys: k.set})
			if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v\nwant %v naming %q", err, c.sentinel, c.want)
			}
			if got, want := errdef.ExitCode(err), errdef.ExitCode(c.sentinel); got != want {
				t.Errorf("exit code %d, want %d", got, want)
			}
		})
	}
}

func TestOpenRefusesExcititor(t *testing.T) {
	k := newKeys(t)
	idx := func(r string) string { return filepath.Join(r, exportID, "mirror", "community", "index.json") }
	edit := func(r string, old, new string) {
		b, _ := os.ReadFile(idx(r))
		os.WriteFile(idx(r), []byte(strings.Replace(string(b), old, new, 1)), 0o644)
	}
	cases := []struct {
		name     string
		edit     func(root string)
		sentinel error
		want     string
	}{
		{"file with ..", func(r string) { edit(r, `"file": "consensus.json"`, `"file": "../consensus.json"`) }, errdef.ErrInvalid, "exports[0].file"},
		{"unknown format", func(r string) { edit(r, `"format": "openvex"`, `"format": "spdx"`) }, errdef.ErrInvalid, "format"},
		{"listed file missing", func(r string) { os.Remove(filepath.Join(r, exportID, "mirror", "community", "claims.jsonl")) }, errdef.ErrInvalid, "claims.jsonl: missing"},
		{"listed signature missing", func(r string) {
			os.Remove(filepath.Join(r, exportID, "mirror", "community", "claims.jsonl.jws"))
		}, errdef.ErrInvalid, "claims.jsonl.jws: missing"},
		{"size lies", func(r string) { edit(r, `"size": 17`, `"size": 18`) }, errdef.ErrDigestMismatch, "consensus.json"},
		{"domainId lies", func(r string) { edit(r, `"domainId": "community"`, `"domainId": "primary"`) }, errdef.ErrInvalid, "domainId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := excititor(t, k)
			c.edit(root)
			_, err := mirror.Open(context.Background(), mirror.Source{Kind: manifest.MirrorExcititor, Root: root, Keys: k.set})
			if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v\nwant %v naming %q", err, c.sentinel, c.want)
			}
		})
	}
}

// A cancelled build stops reading the export.
func TestOpenCancelled(t *testing.T) {
	k := newKeys(t)
	root := concelier(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mirror.Open(ctx, mirror.Source{Kind: manifest.MirrorConcelier, Root: root, Keys: k.set})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context: %v", err)
	}
}
