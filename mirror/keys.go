package mirror

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// Limits on key files.
const (
	MaxKeyFile = 1 << 20 // bytes of one JWK, JWKS or PEM file
	MaxKeys    = 64      // keys in one KeySet
	MinRSABits = 2048
	maxKeyID   = 255
)

// Key is one trusted public key and its id.
type Key struct {
	// ID names the key: a JWK's "kid", else a configured id, else the key's
	// RFC 7638 JWK thumbprint (SHA-256, base64url).
	ID     string
	Public crypto.PublicKey // *ecdsa.PublicKey (P-256), ed25519.PublicKey or *rsa.PublicKey
}

// Alg is the JWS algorithm family of the key: "ES256", "EdDSA" or "RS256"
// (an RSA key also verifies PS256).
func (k Key) Alg() string {
	switch k.Public.(type) {
	case *ecdsa.PublicKey:
		return "ES256"
	case ed25519.PublicKey:
		return "EdDSA"
	default:
		return "RS256"
	}
}

// KeySet is the set of keys a mirror source trusts. The zero value trusts
// nothing.
type KeySet struct {
	keys []Key
}

// NewKeySet returns a set of keys; ids must be unique.
func NewKeySet(keys ...Key) (*KeySet, error) {
	s := &KeySet{}
	for _, k := range keys {
		if err := s.Add(k); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add adds k to the set, refusing a repeated id, an unsupported key and
// more than MaxKeys keys.
func (s *KeySet) Add(k Key) error {
	if err := checkPublic(k.Public); err != nil {
		return fmt.Errorf("key %q: %w", clip(k.ID), err)
	}
	if k.ID == "" || len(k.ID) > maxKeyID {
		return fmt.Errorf("key id %q (%d bytes): empty or over %d bytes: %w", clip(k.ID), len(k.ID), maxKeyID, errdef.ErrInvalid)
	}
	for _, o := range s.keys {
		if o.ID == k.ID {
			return fmt.Errorf("key id %q: given twice: %w", k.ID, errdef.ErrInvalid)
		}
	}
	if len(s.keys) >= MaxKeys {
		return fmt.Errorf("key %q: over %d keys: %w", k.ID, MaxKeys, errdef.ErrInvalid)
	}
	s.keys = append(s.keys, k)
	return nil
}

// clip is a value read from a file (a key id, a signature's kid or alg)
// as messages quote it: at most maxKeyID bytes, "…" marking the cut (the
// file may hold up to a MiB of it).
func clip(s string) string { return limit.Clip(s, maxKeyID) }

// Keys returns the keys of the set, in the order they were added.
func (s *KeySet) Keys() []Key {
	if s == nil {
		return nil
	}
	return append([]Key(nil), s.keys...)
}

// Len is the number of keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// candidates returns the keys that can check a signature of family alg
// ("ES256", "EdDSA", "RSA"), narrowed to the key named kid when kid is not
// empty. A kid that names no key of the set is an untrusted signer.
func (s *KeySet) candidates(alg, kid string) ([]Key, error) {
	var out []Key
	for _, k := range s.Keys() {
		if kid != "" && k.ID != kid {
			continue
		}
		switch k.Public.(type) {
		case *ecdsa.PublicKey:
			if alg != "ES256" {
				continue
			}
		case ed25519.PublicKey:
			if alg != "EdDSA" {
				continue
			}
		case *rsa.PublicKey:
			if alg != "RSA" {
				continue
			}
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		if kid != "" {
			for _, k := range s.Keys() {
				if k.ID == kid {
					return nil, fmt.Errorf("kid %q is a trusted key of another type than %s: %w", clip(kid), alg, errdef.ErrSignature)
				}
			}
			return nil, fmt.Errorf("kid %q is not a trusted key (trusted: %s): %w", clip(kid), s.ids(), errdef.ErrSignature)
		}
		return nil, fmt.Errorf("no trusted %s key (trusted: %s): %w", alg, s.ids(), errdef.ErrSignature)
	}
	return out, nil
}

func (s *KeySet) ids() string {
	if s.Len() == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, k := range s.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", k.ID)
	}
	return b.String()
}

// AddFile reads the key file at path, within MaxKeyFile bytes (a missing
// file is errdef.ErrNotFound), and adds its keys named as ParseKeys names
// them with id; with jwkNamesItself, id names only a PEM file's key and a
// JWK or JWKS names its keys itself (kid, else the thumbprint). Errors
// name path. It reads what path names, a pipe too (limit.ReadFile): for a
// path an operator gives; a key file of a kit spec or of a site is read
// with AddRegularFile.
func (s *KeySet) AddFile(path, id string, jwkNamesItself bool) error {
	b, err := limit.ReadFile(path, MaxKeyFile)
	if err != nil {
		return err
	}
	return s.addKeyFile(path, b, id, jwkNamesItself)
}

// AddRegularFile is AddFile for a regular file: anything else, a named
// pipe above all, is refused at once, errdef.ErrInvalid naming path
// (limit.ReadRegularFile).
func (s *KeySet) AddRegularFile(path, id string, jwkNamesItself bool) error {
	b, err := limit.ReadRegularFile(path, MaxKeyFile)
	if err != nil {
		return err
	}
	return s.addKeyFile(path, b, id, jwkNamesItself)
}

func (s *KeySet) addKeyFile(path string, b []byte, id string, jwkNamesItself bool) error {
	if jwkNamesItself && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		id = ""
	}
	keys, err := ParseKeys(path, b, id)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Add(k); err != nil {
			return fmt.Errorf("key file %s: %w", path, err)
		}
	}
	return nil
}

// ParseKeys reads the public keys of a key file: a JWK, a JWKS
// ({"keys":[...]}) or PEM ("PUBLIC KEY" PKIX blocks, or "RSA PUBLIC KEY"
// PKCS #1). id names a PEM file's key (one key only); without it, and for a
// JWK without "kid", a key is named by its RFC 7638 thumbprint. Private
// keys, symmetric (oct) keys, curves other than P-256, and RSA keys under
// MinRSABits are refused. name is the file's name for messages; errors
// wrap errdef.ErrInvalid.
func ParseKeys(name string, b []byte, id string) ([]Key, error) {
	if len(b) > MaxKeyFile {
		return nil, fmt.Errorf("key file %s: %d bytes, over %d: %w", name, len(b), MaxKeyFile, errdef.ErrInvalid)
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' {
		return parseJWKs(name, t, id)
	}
	var keys []Key
	rest := t
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		var pub any
		var err error
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		default:
			return nil, fmt.Errorf("key file %s: PEM block %q: not a public key: %w", name, blk.Type, errdef.ErrInvalid)
		}
		if err != nil {
			return nil, fmt.Errorf("key file %s: %v: %w", name, err, errdef.ErrInvalid)
		}
		if err := checkPublic(pub); err != nil {
			return nil, fmt.Errorf("key file %s: %w", name, err)
		}
		k := Key{ID: id, Public: pub}
		if id == "" {
			if k.ID, err = Thumbprint(pub); err != nil {
				return nil, fmt.Errorf("key file %s: %w", name, err)
			}
		}
		keys = append(keys, k)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("key file %s: not a JWK, a JWKS or PEM public keys (trailing data): %w", name, errdef.ErrInvalid)
	}
	switch {
	case len(keys) == 0:
		return nil, fmt.Errorf("key file %s: no public key: %w", name, errdef.ErrInvalid)
	case len(keys) > 1 && id != "":
		return nil, fmt.Errorf("key file %s: %d keys, but one id %q: %w", name, len(keys), id, errdef.ErrInvalid)
	}
	return keys, nil
}

func parseJWKs(name string, b []byte, id string) ([]Key, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("key file %s: %v: %w", name, err, errdef.ErrInvalid)
	}
	var jwks []jose.JSONWebKey
	if probe.Keys != nil {
		// One key at a time, to name the one at fault.
		var raws []json.RawMessage
		if err := json.Unmarshal(probe.Keys, &raws); err != nil {
			return nil, fmt.Errorf("key file %s: keys: %v: %w", name, err, errdef.ErrInvalid)
		}
		for i, r := range raws {
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON(r); err != nil {
				return nil, fmt.Errorf("key file %s: keys[%d]: %v: %w", name, i, err, errdef.ErrInvalid)
			}
			jwks = append(jwks, k)
		}
	} else {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("key file %s: %v: %w", name, err, errdef.ErrInvalid)
		}
		jwks = append(jwks, k)
	}
	if len(jwks) == 0 {
		return nil, fmt.Errorf("key file %s: no key in the JWKS: %w", name, errdef.ErrInvalid)
	}
	if id != "" && len(jwks) > 1 {
		return nil, fmt.Errorf("key file %s: %d keys, but one id %q: %w", name, len(jwks), id, errdef.ErrInvalid)
	}
	var keys []Key
	for i, k := range jwks {
		field := fmt.Sprintf("key file %s: key %d (kid %q)", name, i, clip(k.KeyID))
		if _, ok := k.Key.([]byte); ok {
			return nil, fmt.Errorf("%s: a symmetric (oct) key: HMAC is not accepted for mirror signatures: %w", field, errdef.ErrInvalid)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("%s: a private key: give the public key only: %w", field, errdef.ErrInvalid)
		}
		if err := checkPublic(k.Key); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		kid := k.KeyID
		if kid == "" {
			kid = id
		}
		if kid == "" {
			var err error
			if kid, err = Thumbprint(k.Key); err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
		}
		keys = append(keys, Key{ID: kid, Public: k.Key})
	}
	return keys, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a public key: SHA-256,
// base64url without padding.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %v: %w", err, errdef.ErrInvalid)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// checkPublic refuses keys mirror signatures cannot use.
func checkPublic(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is accepted: %w", k.Curve.Params().Name, errdef.ErrInvalid)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key of %d bytes: %w", len(k), errdef.ErrInvalid)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits, under %d: %w", k.N.BitLen(), MinRSABits, errdef.ErrInvalid)
		}
	case nil:
		return fmt.Errorf("no key: %w", errdef.ErrInvalid)
	default:
		return fmt.Errorf("key type %T: only ECDSA P-256, Ed25519 and RSA public keys are accepted: %w", pub, errdef.ErrInvalid)
	}
	return nil
}
