package kit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/fifotest"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

const mirrorID = "20251123T000000Z"

// mirrorFixture writes, under dir, a Concelier export (primary: Ed25519
// JWS; community: cosign P-256) and an Excititor export (community: ES256
// JWS, json and openvex), the keys as a JWK and a PEM, and a kit.yaml
// carrying both exports.
func mirrorFixture(t *testing.T, dir string) (ed ed25519.PrivateKey, ec *ecdsa.PrivateKey) {
	t.Helper()
	ed = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jws := mirrortest.Signer{Kind: mirrortest.JWS, Key: ed, KeyID: "mirror-ed25519"}
	err = mirrortest.Write(filepath.Join(dir, "exports/concelier"), "concelier", mirrorID, []mirrortest.Domain{
		{ID: "primary", DisplayName: "Primary", Created: "2025-11-23T00:00:00Z", Signer: jws,
			Bundle: []byte(`{"generatedAt":"2025-11-23T00:10:00Z","advisories":[{"id":"CVE-2025-0001"}]}`)},
		{ID: "community", DisplayName: "Community", Created: "2025-11-23T00:00:00Z", Signer: mirrortest.Signer{Kind: mirrortest.Cosign, Key: ec},
			Bundle: []byte(`{"generatedAt":"2025-11-23T00:00:00Z","advisories":[]}`)},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	err = mirrortest.Write(filepath.Join(dir, "exports/excititor"), "excititor", mirrorID, []mirrortest.Domain{
		{ID: "community", GeneratedAt: "2025-11-23T01:00:00Z", Signer: mirrortest.Signer{Kind: mirrortest.JWS, Key: ec, KeyID: "mirror-p256"}, Exports: []mirrortest.ExportFile{
			{Key: "consensus", Format: "json", File: "consensus.json", Data: []byte(`{"statements":[]}`)},
			{Key: "consensus", Format: "openvex", File: "consensus.openvex.json", Data: []byte(`{"statements":[]}`)},
		}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: ed.Public(), KeyID: "mirror-ed25519"})
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	kittest.Files(t, dir, map[string]string{
		"keys/mirror-ed25519.jwk": string(jwk),
		"keys/mirror-p256.pem":    string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"kit.yaml": `name: feeds
version: 1.0.0
createdAt: 2025-11-24T00:00:00Z
mirror:
  - kind: concelier
    root: exports/concelier
    keys: [keys/mirror-ed25519.jwk, {path: keys/mirror-p256.pem, id: mirror-p256}]
  - kind: excititor
    root: exports/excititor
    exportId: newest
    keys:
      - path: keys/mirror-p256.pem
        id: mirror-p256
`,
	})
	return ed, ec
}

func buildSpec(t *testing.T, dir string, key *kittest.Key) (*kit.BuildResult, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := manifest.ParseSpec("kit.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	return kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
}

// A kit.yaml's mirror sources are checked, their signatures verified, and
// packed byte for byte at mirror/<kind>/<exportId>/mirror/…, with
// mirror[] recording kind, export id, domains, times and each signed
// file's digest, signature kind, key id and alg; the kit verifies, and two
// builds give the same bytes.
func TestBuildMirror(t *testing.T) {
	dir := t.TempDir()
	mirrorFixture(t, dir)
	key := kittest.NewKey(t)
	res, err := buildSpec(t, dir, key)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	var paths []string
	for _, e := range m.Entries {
		if e.Role == manifest.RoleMirror {
			paths = append(paths, e.Path)
		}
	}
	want := []string{
		"mirror/concelier/" + mirrorID + "/mirror/community/bundle.json",
		"mirror/concelier/" + mirrorID + "/mirror/community/bundle.json.jws",
		"mirror/concelier/" + mirrorID + "/mirror/community/manifest.json",
		"mirror/concelier/" + mirrorID + "/mirror/index.json",
		"mirror/concelier/" + mirrorID + "/mirror/primary/bundle.json",
		"mirror/concelier/" + mirrorID + "/mirror/primary/bundle.json.jws",
		"mirror/concelier/" + mirrorID + "/mirror/primary/manifest.json",
		"mirror/excititor/" + mirrorID + "/mirror/community/consensus.json",
		"mirror/excititor/" + mirrorID + "/mirror/community/consensus.json.jws",
		"mirror/excititor/" + mirrorID + "/mirror/community/consensus.openvex.json",
		"mirror/excititor/" + mirrorID + "/mirror/community/consensus.openvex.json.jws",
		"mirror/excititor/" + mirrorID + "/mirror/community/index.json",
		"mirror/excititor/" + mirrorID + "/mirror/index.json",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mirror entries\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	if len(m.Mirror) != 2 {
		t.Fatalf("mirror[] %+v", m.Mirror)
	}
	c, x := m.Mirror[0], m.Mirror[1]
	if c.Kind != "concelier" || c.ExportID != mirrorID || strings.Join(c.Domains, ",") != "community,primary" ||
		c.Created.Format("2006-01-02T15:04:05Z") != "2025-11-23T00:00:00Z" || c.GeneratedAt.Format("2006-01-02T15:04:05Z") != "2025-11-23T00:10:00Z" {
		t.Errorf("concelier record %+v", c)
	}
	sigs := map[string]string{}
	for _, rec := range m.Mirror {
		for _, f := range rec.Files {
			sigs[f.Path] = f.Signature.Kind + " " + f.Signature.Alg + " " + f.Signature.KeyID + " " + f.ExportKey + " " + f.Format
		}
	}
	p := "mirror/concelier/" + mirrorID + "/mirror/"
	q := "mirror/excititor/" + mirrorID + "/mirror/"
	for path, w := range map[string]string{
		p + "primary/bundle.json":              "jws EdDSA mirror-ed25519  ",
		p + "community/bundle.json":            "cosign ES256 mirror-p256  ",
		q + "community/consensus.json":         "jws ES256 mirror-p256 consensus json",
		q + "community/consensus.openvex.json": "jws ES256 mirror-p256 consensus openvex",
	} {
		if sigs[path] != w {
			t.Errorf("%s: %q, want %q", path, sigs[path], w)
		}
	}
	if x.Kind != "excititor" || x.GeneratedAt.Format("2006-01-02T15:04:05Z") != "2025-11-23T01:00:00Z" {
		t.Errorf("excititor record %+v", x)
	}
	if _, err := verify.File(context.Background(), res.Path, verify.Options{Keys: []*sign.PublicKey{key.Public}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Same inputs, same bytes.
	again, err := buildSpec(t, dir, key)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(res.Path)
	b, _ := os.ReadFile(again.Path)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same mirror exports differ")
	}
}

// Hostile mirror sources fail the build with the file at fault: a bad
// signature exit 5, a malformed export exit 11.
func TestBuildMirrorRefuses(t *testing.T) {
	exp := func(dir string, rel ...string) string {
		return filepath.Join(append([]string{dir, "exports", "concelier", mirrorID, "mirror"}, rel...)...)
	}
	cases := []struct {
		name string
		edit func(dir string)
		code int
		want string
		pipe string // a named pipe the build must not wait on
	}{
		{"bundle changed", func(d string) { os.WriteFile(exp(d, "primary", "bundle.json"), []byte(`{}`), 0o644) }, 5, "primary/bundle.json.jws", ""},
		{"untrusted key", func(d string) {
			other := mirrortest.Signer{Kind: mirrortest.JWS, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)), KeyID: "rogue"}
			sig, _ := other.Sign("bundle.json", mustRead(t, exp(d, "primary", "bundle.json")))
			os.WriteFile(exp(d, "primary", "bundle.json.jws"), sig, 0o644)
		}, 5, `kid "rogue" is not a trusted key`, ""},
		{"index lists a missing domain", func(d string) {
			os.WriteFile(exp(d, "index.json"), []byte(`{"schemaVersion":1,"domains":[{"id":"primary"},{"id":"community"},{"id":"ghost"}]}`), 0o644)
		}, 11, `"ghost"`, ""},
		{"symlink inside the export", func(d string) {
			os.Remove(exp(d, "community", "manifest.json"))
			os.Symlink("../primary/manifest.json", exp(d, "community", "manifest.json"))
		}, 11, "community/manifest.json: a symbolic link", ""},
		{"no such export id", func(d string) {
			b := mustRead(t, filepath.Join(d, "kit.yaml"))
			os.WriteFile(filepath.Join(d, "kit.yaml"), bytes.Replace(b, []byte("exportId: newest"), []byte("exportId: 20990101T000000Z"), 1), 0o644)
		}, 1, "20990101T000000Z", ""},
		{"key file is a named pipe", func(d string) { fifotest.Replace(t, filepath.Join(d, "keys", "mirror-ed25519.jwk")) },
			11, "keys/mirror-ed25519.jwk: a named pipe, not a regular file", "keys/mirror-ed25519.jwk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mirrorFixture(t, dir)
			c.edit(dir)
			done := func() {}
			if c.pipe != "" {
				done = fifotest.Guard(t, filepath.Join(dir, c.pipe))
			}
			_, err := buildSpec(t, dir, kittest.NewKey(t))
			done()
			if errdef.ExitCode(err) != c.code || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "spec /mirror/") {
				t.Fatalf("build: %v (exit %d)\nwant exit %d naming %q", err, errdef.ExitCode(err), c.code, c.want)
			}
		})
	}
	// The spec itself: an unsafe export id or domain never reaches the disk.
	for _, bad := range []string{"exportId: ../x", "exportId: a%2fb", "domains: [a/b]"} {
		y := "name: feeds\nversion: 1.0.0\nmirror:\n  - kind: concelier\n    root: r\n    keys: [k]\n    " + bad + "\n"
		if _, err := manifest.ParseSpec("kit.yaml", []byte(y)); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
