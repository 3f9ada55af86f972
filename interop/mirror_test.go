//go:build interop

package interop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
)

// smoke runs the mirror runbook's smoke tests (scripts/mirror-smoke.sh:
// curl -I headers, cosign verify-blob of the served bundle, 401 with
// WWW-Authenticate: Bearer and Basic, no-store, 429 with Retry-After) against `offkit serve`
// of the site at root.
func smoke(t *testing.T, root, pub string) {
	t.Helper()
	for _, name := range []string{"curl", "jq", "htpasswd", "cosign"} {
		tool(t, name)
	}
	script, err := filepath.Abs("../scripts/mirror-smoke.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(run(t, t.TempDir(), nil, "bash", script, tool(t, "offkit"), root, pub, "mirror:s3cret"))
}

// TestMirrorSmokeFixture: the smoke tests against a site holding a
// Concelier export (two domains, bundles signed with a cosign blob
// signature) and an Excititor export.
func TestMirrorSmokeFixture(t *testing.T) {
	dir := t.TempDir()
	ck, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ek, _ := ed25519.GenerateKey(nil)
	root := filepath.Join(dir, "site")
	if _, err := kittest.MirrorSite(root, ek,
		kittest.MirrorExport{Kind: "concelier", ExportID: "20251123T000000Z", Created: "2025-11-23T00:00:00Z", Domains: []string{"primary", "community"}, Cosign: ck},
		kittest.MirrorExport{Kind: "excititor", ExportID: "20251123T000000Z", Created: "2025-11-23T00:00:00Z", Domains: []string{"community"}},
	); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ck.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "mirror-key.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	smoke(t, root, pub)
}

// TestMirrorSmokeExample: the smoke tests against a site where a kit
// carrying the example's Concelier and Excititor exports (its primary
// bundle cosign-signed) was built and installed with offkit.
func TestMirrorSmokeExample(t *testing.T) {
	dir := t.TempDir()
	example, err := filepath.Abs("../examples/zastava-runtime/mirror")
	if err != nil {
		t.Fatal(err)
	}
	run(t, dir, nil, "cp", "-a", example, filepath.Join(dir, "mirror"))
	spec := `name: mirror-smoke
version: 1.0.0
createdAt: 2025-11-23T00:00:00Z
mirror:
  - kind: concelier
    root: mirror/concelier
    keys:
      - mirror/keys/mirror-ed25519.jwk
      - {path: mirror/keys/mirror-key.pub, id: mirror-p256}
  - kind: excititor
    root: mirror/excititor
    keys:
      - {path: mirror/keys/mirror-key.pub, id: mirror-p256}
`
	if err := os.WriteFile(filepath.Join(dir, "kit.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"COSIGN_PASSWORD=interop"}
	run(t, dir, env, "offkit", "key", "generate", "--output-key-prefix", "kit")
	run(t, dir, env, "offkit", "build", "-f", "kit.yaml", "-o", dir, "--key", "kit.key")
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", filepath.Join(dir, "mirror-smoke-1.0.0.kit.tar.zst"), "--root", root, "--key", "kit.pub")
	smoke(t, root, filepath.Join(example, "keys", "mirror-key.pub"))
}
