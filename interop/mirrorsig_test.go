//go:build interop

package interop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// TestCosignMirrorSignatures: the runbook's smoke test, `cosign verify-blob
// --signature bundle.json.jws --key mirror-key.pub bundle.json`, accepts the
// example export's cosign-signed bundle and a fresh one written the same
// way, and refuses a changed bundle; and a signature made by stock `cosign
// sign-blob` is accepted by package mirror as kind cosign.
func TestCosignMirrorSignatures(t *testing.T) {
	dir := t.TempDir()
	env := cosignEnv(t, dir)
	ex := filepath.Join("..", "examples", "zastava-runtime", "mirror")
	d := filepath.Join(ex, "concelier", "20251123T000000Z", "mirror", "primary")
	run(t, ".", env, "cosign", "verify-blob", "--insecure-ignore-tlog=true",
		"--signature", filepath.Join(d, "bundle.json.jws"), "--key", filepath.Join(ex, "keys", "mirror-key.pub"), filepath.Join(d, "bundle.json"))

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bundle := []byte(`{"generatedAt":"2025-11-23T00:00:00Z","advisories":[]}`)
	sig, err := mirrortest.Signer{Kind: mirrortest.Cosign, Key: ec}.Sign("bundle.json", bundle)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	os.WriteFile(filepath.Join(dir, "mirror-key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "bundle.json"), bundle, 0o644)
	os.WriteFile(filepath.Join(dir, "bundle.json.jws"), sig, 0o644)
	run(t, dir, env, "cosign", "verify-blob", "--insecure-ignore-tlog=true", "--signature", "bundle.json.jws", "--key", "mirror-key.pub", "bundle.json")
	os.WriteFile(filepath.Join(dir, "bundle.json"), append(bundle, ' '), 0o644)
	fails(t, dir, env, "cosign", "verify-blob", "--insecure-ignore-tlog=true", "--signature", "bundle.json.jws", "--key", "mirror-key.pub", "bundle.json")

	// The other way: stock cosign signs, package mirror verifies.
	run(t, dir, env, "cosign", "generate-key-pair")
	os.WriteFile(filepath.Join(dir, "bundle.json"), bundle, 0o644)
	os.Remove(filepath.Join(dir, "bundle.json.jws"))
	run(t, dir, env, "cosign", "sign-blob", "--key", "cosign.key", "--tlog-upload=false", "--output-signature", "bundle.json.jws", "bundle.json")
	pub, _ := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	keys, err := mirror.ParseKeys("cosign.pub", pub, "cosign-cli")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := mirror.NewKeySet(keys...)
	sb, _ := os.ReadFile(filepath.Join(dir, "bundle.json.jws"))
	s, err := mirror.ParseSignature("bundle.json.jws", sb)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(bytes.NewReader(bundle), set, "bundle.json")
	if err != nil || v.Kind != manifest.MirrorSigCosign || v.KeyID != "cosign-cli" {
		t.Fatalf("cosign sign-blob's signature: %+v %v", v, err)
	}
	if _, err := s.Verify(bytes.NewReader(append(bundle, ' ')), set, "bundle.json"); err == nil {
		t.Fatal("cosign sign-blob's signature verified a changed bundle")
	}
}
