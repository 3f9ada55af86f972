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
// WWW-Authenticate: Bearer, 429 with Retry-After) against `offkit serve`
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
