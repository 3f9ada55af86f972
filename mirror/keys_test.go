package mirror_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/mirror"
)

func pemOf(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func jwkOf(t *testing.T, key any, kid string) []byte {
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 7638 section 3.1: the example RSA key and its thumbprint.
const rfc7638Key = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

func TestParseKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)

	// PEM: several blocks, named by thumbprint, or one by a configured id.
	pems := append(append(pemOf(t, &ec.PublicKey), pemOf(t, edPub)...), pemOf(t, &rk.PublicKey)...)
	keys, err := mirror.ParseKeys("keys.pem", pems, "")
	if err != nil || len(keys) != 3 {
		t.Fatalf("PEM: %v %d", err, len(keys))
	}
	tp, _ := mirror.Thumbprint(&ec.PublicKey)
	if keys[0].ID != tp || keys[1].Alg() != "EdDSA" || keys[2].Alg() != "RS256" {
		t.Errorf("PEM keys %+v", keys)
	}
	keys, err = mirror.ParseKeys("key.pem", pemOf(t, edPub), "mirror-key")
	if err != nil || keys[0].ID != "mirror-key" {
		t.Errorf("PEM with id: %v %+v", err, keys)
	}
	// JWK with kid, JWKS.
	keys, err = mirror.ParseKeys("key.jwk", jwkOf(t, edPub, "ed-1"), "")
	if err != nil || keys[0].ID != "ed-1" {
		t.Errorf("JWK: %v %+v", err, keys)
	}
	jwks := `{"keys":[` + string(jwkOf(t, &ec.PublicKey, "ec-1")) + `,` + string(jwkOf(t, &rk.PublicKey, "")) + `]}`
	keys, err = mirror.ParseKeys("keys.jwks", []byte(jwks), "")
	if err != nil || len(keys) != 2 || keys[0].ID != "ec-1" {
		t.Fatalf("JWKS: %v %+v", err, keys)
	}
	if tp, _ := mirror.Thumbprint(&rk.PublicKey); keys[1].ID != tp {
		t.Errorf("JWK without kid: id %q, want thumbprint %q", keys[1].ID, tp)
	}
	// RFC 7638's own example.
	keys, err = mirror.ParseKeys("rfc7638.jwk", []byte(strings.Replace(rfc7638Key, `,"kid":"2011-04-29"`, "", 1)), "")
	if err != nil || keys[0].ID != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RFC 7638 thumbprint: %v %+v", err, keys)
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	privDER, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	bad := []struct {
		name string
		b    []byte
		want string
	}{
		{"private JWK", jwkOf(t, edPriv, "x"), "private key"},
		{"symmetric JWK", []byte(`{"kty":"oct","k":"c2VjcmV0","kid":"h"}`), "HMAC"},
		{"P-384", pemOf(t, &p384.PublicKey), "P-384"},
		{"RSA 1024", pemOf(t, &small.PublicKey), "1024 bits"},
		{"private PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), "not a public key"},
		{"nothing", []byte("hello"), "trailing data"},
		{"empty JWKS", []byte(`{"keys":[]}`), "no key"},
		{"bad JSON", []byte(`{"keys":`), "key file"},
	}
	for _, c := range bad {
		_, err := mirror.ParseKeys(c.name, c.b, "")
		if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
	}
	if _, err := mirror.NewKeySet(mirror.Key{ID: "a", Public: edPub}, mirror.Key{ID: "a", Public: &ec.PublicKey}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("repeated id: %v", err)
	}
}
