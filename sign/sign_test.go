package sign_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/sign"
)

func newKey(t *testing.T) (*sign.PrivateKey, []byte, []byte) {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.LoadPrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return k, priv, pub
}

func TestRoundTripAndDeterminism(t *testing.T) {
	k, priv, pub := newKey(t)
	if !bytes.HasPrefix(priv, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
		t.Fatalf("private key is not in cosign's PEM form:\n%s", priv)
	}
	p, err := sign.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID() != k.Public().KeyID() || !bytes.Equal(p.PEM(), pub) {
		t.Fatalf("public key %s does not match the private key's %s", p.KeyID(), k.Public().KeyID())
	}
	msg := []byte("offkit/manifest.json bytes")
	s1, err := k.SignBlob(msg)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := k.SignBlob(msg)
	if !bytes.Equal(s1, s2) {
		t.Fatal("two signatures of the same bytes differ: ECDSA nonces are not deterministic")
	}
	if err := p.VerifyBlob(msg, append(s1, '\n')); err != nil {
		t.Fatalf("signature with a trailing newline: %v", err)
	}
	if err := p.VerifyBlob([]byte("other bytes"), s1); !errors.Is(err, errdef.ErrSignature) {
		t.Fatalf("other bytes: %v, want ErrSignature", err)
	}
	other, _, _ := newKey(t)
	if _, err := sign.VerifyAny([]*sign.PublicKey{other.Public()}, msg, s1); !errors.Is(err, errdef.ErrSignature) {
		t.Fatalf("untrusted key: %v, want ErrSignature", err)
	}
	got, err := sign.VerifyAny([]*sign.PublicKey{other.Public(), p}, msg, s1)
	if err != nil || got.KeyID() != p.KeyID() {
		t.Fatalf("VerifyAny = %v, %v", got, err)
	}
}

func TestHostileKeysAndSignatures(t *testing.T) {
	_, priv, pub := newKey(t)
	k, _ := sign.LoadPrivateKey(priv, []byte("pw"))
	for name, c := range map[string]struct {
		load func() error
		want error
	}{
		"wrong password":       {func() error { _, err := sign.LoadPrivateKey(priv, []byte("nope")); return err }, errdef.ErrInvalid},
		"not PEM":              {func() error { _, err := sign.LoadPrivateKey([]byte("garbage"), nil); return err }, errdef.ErrInvalid},
		"public as private":    {func() error { _, err := sign.LoadPrivateKey(pub, []byte("pw")); return err }, errdef.ErrInvalid},
		"private as public":    {func() error { _, err := sign.LoadPublicKey(priv); return err }, errdef.ErrInvalid},
		"signature not base64": {func() error { return k.Public().VerifyBlob([]byte("x"), []byte("!!!")) }, errdef.ErrSignature},
		"empty signature":      {func() error { return k.Public().VerifyBlob([]byte("x"), nil) }, errdef.ErrSignature},
		"huge signature": {func() error {
			return k.Public().VerifyBlob([]byte("x"), bytes.Repeat([]byte("A"), sign.MaxSignatureSize+1))
		}, errdef.ErrSignature},
	} {
		if err := c.load(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestEd25519(t *testing.T) {
	_, edk, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(edk)
	enc, err := encrypted.Encrypt(der, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.LoadPrivateKey(pem.EncodeToMemory(&pem.Block{Type: sign.CosignPrivateKeyType, Bytes: enc}), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.SignBlob([]byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := sign.LoadPublicKey(k.Public().PEM())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyBlob([]byte("m"), sig); err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignDigest(make([]byte, 32)); !errors.Is(err, sign.ErrNeedsMessage) {
		t.Fatalf("SignDigest with Ed25519: %v", err)
	}
}
