package authority

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/errdef"
)

// Limits of a JWKS.
const (
	// MaxKeys bounds the keys of a JWKS.
	MaxKeys = 100
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// The signature algorithms accepted, for tokens and DPoP proofs. none and
// HMAC are never among them.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// KeySet is the usable signing keys of a JWKS: public, asymmetric, for
// signatures (use absent or "sig"), of a type one of RS256, PS256, ES256
// or EdDSA verifies.
type KeySet struct {
	keys []jose.JSONWebKey
	// Skipped counts keys of a type or curve that no accepted algorithm
	// uses (an issuer may publish encryption keys or newer key types).
	Skipped int
}

// ParseJWKS parses a JWKS. A set with a private or symmetric key is refused
// whole (an issuer that publishes one is misconfigured, and none of it is
// trusted), as is one over MaxDocumentSize or MaxKeys, one that is not a
// JSON object with a "keys" array, and one without a usable key. Errors
// wrap errdef.ErrInvalid and never quote key material.
func ParseJWKS(b []byte) (KeySet, error) {
	var ks KeySet
	if len(b) > MaxDocumentSize {
		return ks, fmt.Errorf("jwks: over %d bytes: %w", MaxDocumentSize, errdef.ErrInvalid)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return ks, fmt.Errorf("jwks: not a JSON object with a keys array: %w", errdef.ErrInvalid)
	}
	if len(raw.Keys) > MaxKeys {
		return ks, fmt.Errorf("jwks: %d keys, over %d: %w", len(raw.Keys), MaxKeys, errdef.ErrInvalid)
	}
	for i, r := range raw.Keys {
		var probe struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			D   any    `json:"d"`
			K   any    `json:"k"`
		}
		if err := json.Unmarshal(r, &probe); err != nil {
			return ks, fmt.Errorf("jwks: key %d: not a JSON object: %w", i, errdef.ErrInvalid)
		}
		if probe.D != nil || probe.K != nil || probe.Kty == "oct" {
			return ks, fmt.Errorf("jwks: key %d (kid %q): a private or symmetric key is published: %w", i, truncate(probe.Kid, 64), errdef.ErrInvalid)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			ks.Skipped++
			continue
		}
		if !k.IsPublic() || !k.Valid() {
			return ks, fmt.Errorf("jwks: key %d (kid %q): not a valid public key: %w", i, truncate(probe.Kid, 64), errdef.ErrInvalid)
		}
		if (k.Use != "" && k.Use != "sig") || keyAlgs(k.Key) == nil {
			ks.Skipped++
			continue
		}
		if k.Algorithm != "" && !algFits(jose.SignatureAlgorithm(k.Algorithm), k.Key) {
			ks.Skipped++
			continue
		}
		ks.keys = append(ks.keys, k)
	}
	if len(ks.keys) == 0 {
		return ks, fmt.Errorf("jwks: no usable signing key (RSA ≥ %d bits, P-256, Ed25519): %w", MinRSABits, errdef.ErrInvalid)
	}
	return ks, nil
}

// IDs lists the key ids, in the JWKS's order.
func (s KeySet) IDs() []string {
	var ids []string
	for _, k := range s.keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// Len is the number of usable keys.
func (s KeySet) Len() int { return len(s.keys) }

// keyAlgs lists the accepted algorithms a public key verifies, nil for a key
// none of them uses.
func keyAlgs(key any) []jose.SignatureAlgorithm {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil
		}
		return []jose.SignatureAlgorithm{jose.RS256, jose.PS256}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil
		}
		return []jose.SignatureAlgorithm{jose.ES256}
	case ed25519.PublicKey:
		return []jose.SignatureAlgorithm{jose.EdDSA}
	}
	return nil
}

// algFits reports whether alg is accepted and matches the key's type.
func algFits(alg jose.SignatureAlgorithm, key any) bool {
	for _, a := range keyAlgs(key) {
		if a == alg {
			return true
		}
	}
	return false
}
