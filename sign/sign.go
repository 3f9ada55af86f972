// Package sign reads and writes cosign-compatible key pairs and blob
// signatures, so that the stock cosign CLI accepts what offkit signs and
// offkit accepts keys that `cosign generate-key-pair` makes.
//
// # Formats
//
//   - A private key is a PEM block of type "ENCRYPTED SIGSTORE PRIVATE KEY"
//     (or the older "ENCRYPTED COSIGN PRIVATE KEY") holding the JSON that
//     go-securesystemslib's encrypted package writes (scrypt and
//     NaCl secretbox) around a PKCS #8 DER key. ECDSA P-256 and Ed25519 keys
//     are accepted; GenerateKeyPair makes ECDSA P-256, as cosign does.
//   - A public key is a PEM block of type "PUBLIC KEY" (PKIX DER).
//   - A signature is the standard base64 of an ASN.1 DER ECDSA signature over
//     the SHA-256 of the signed bytes, or of a 64-byte Ed25519 signature over
//     the bytes themselves: what `cosign sign-blob` writes. Surrounding white
//     space is ignored when reading one.
//
// Signatures are deterministic: ECDSA uses RFC 6979 nonces and Ed25519 is
// deterministic by construction, so the same key signs the same bytes to the
// same signature, and a kit rebuilt with the same key is byte-identical.
//
// A key id is "sha256:" followed by the lowercase hex SHA-256 of the PKIX DER
// public key.
//
// A signature that does not verify is errdef.ErrSignature; a key or
// signature that cannot be read is errdef.ErrInvalid.
package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/offkit/offkit/internal/errdef"
)

// PEM block types of cosign key files.
const (
	SigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	CosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
	PublicKeyType          = "PUBLIC KEY"
)

// MaxSignatureSize bounds an encoded signature (base64 plus white space).
const MaxSignatureSize = 16 << 10

// PrivateKey is a signing key.
type PrivateKey struct {
	signer crypto.Signer
	public *PublicKey
}

// PublicKey is a verification key.
type PublicKey struct {
	key crypto.PublicKey
	der []byte
	id  string
}

// GenerateKeyPair makes an ECDSA P-256 key pair and returns the private key
// encrypted with password and the public key, both PEM, as cosign writes
// them.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypting private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyType, Bytes: enc}),
		pem.EncodeToMemory(&pem.Block{Type: PublicKeyType, Bytes: pub}), nil
}

// LoadPrivateKey decrypts a cosign private key file with password. A wrong
// password, like any key that cannot be read, is errdef.ErrInvalid.
func LoadPrivateKey(pemBytes, password []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("private key: no PEM block: %w", errdef.ErrInvalid)
	}
	if block.Type != SigstorePrivateKeyType && block.Type != CosignPrivateKeyType {
		return nil, fmt.Errorf("private key: PEM type %q, want %q: %w", block.Type, SigstorePrivateKeyType, errdef.ErrInvalid)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, fmt.Errorf("private key: decrypting (wrong password?): %w: %w", err, errdef.ErrInvalid)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: %w: %w", err, errdef.ErrInvalid)
	}
	var s crypto.Signer
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("private key: ECDSA curve %s, want P-256: %w", k.Curve.Params().Name, errdef.ErrInvalid)
		}
		s = k
	case ed25519.PrivateKey:
		s = k
	default:
		return nil, fmt.Errorf("private key: %T is not supported (ECDSA P-256 or Ed25519): %w", k, errdef.ErrInvalid)
	}
	pub, err := newPublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{signer: s, public: pub}, nil
}

// LoadPublicKey reads a PEM public key.
func LoadPublicKey(pemBytes []byte) (*PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("public key: no PEM block: %w", errdef.ErrInvalid)
	}
	if block.Type != PublicKeyType {
		return nil, fmt.Errorf("public key: PEM type %q, want %q: %w", block.Type, PublicKeyType, errdef.ErrInvalid)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w: %w", err, errdef.ErrInvalid)
	}
	return newPublicKey(k)
}

func newPublicKey(k crypto.PublicKey) (*PublicKey, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("public key: ECDSA curve %s, want P-256: %w", k.Curve.Params().Name, errdef.ErrInvalid)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("public key: %T is not supported (ECDSA P-256 or Ed25519): %w", k, errdef.ErrInvalid)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("public key: %w: %w", err, errdef.ErrInvalid)
	}
	sum := sha256.Sum256(der)
	return &PublicKey{key: k, der: der, id: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// Public returns the key's public half.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// SignBlob signs b and returns the signature as cosign sign-blob writes it.
func (k *PrivateKey) SignBlob(b []byte) ([]byte, error) {
	if ed, ok := k.signer.(ed25519.PrivateKey); ok {
		return encode(ed25519.Sign(ed, b)), nil
	}
	sum := sha256.Sum256(b)
	return k.SignDigest(sum[:])
}

// SignDigest signs the bytes whose SHA-256 is digest, for data too large to
// hold (a whole kit). Ed25519 signs messages, not digests, so an Ed25519 key
// cannot sign this way: ErrNeedsMessage.
func (k *PrivateKey) SignDigest(digest []byte) ([]byte, error) {
	ec, ok := k.signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, ErrNeedsMessage
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("digest of %d bytes, want %d: %w", len(digest), sha256.Size, errdef.ErrInvalid)
	}
	// A nil random source gives a deterministic RFC 6979 signature.
	sig, err := ec.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return encode(sig), nil
}

// ErrNeedsMessage: an Ed25519 key signs or verifies the whole message, not
// its digest.
var ErrNeedsMessage = errors.New("an Ed25519 key signs whole messages, not digests")

// NeedsMessage reports whether the key signs whole messages (Ed25519) rather
// than their SHA-256.
func (k *PublicKey) NeedsMessage() bool {
	_, ok := k.key.(ed25519.PublicKey)
	return ok
}

// KeyID returns "sha256:" + hex of the PKIX DER public key.
func (k *PublicKey) KeyID() string { return k.id }

// PEM returns the PEM encoding of the public key.
func (k *PublicKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: PublicKeyType, Bytes: k.der})
}

// VerifyBlob checks a cosign blob signature over b.
func (k *PublicKey) VerifyBlob(b, sig []byte) error {
	raw, err := decode(sig)
	if err != nil {
		return err
	}
	if ed, ok := k.key.(ed25519.PublicKey); ok {
		if !ed25519.Verify(ed, b, raw) {
			return fmt.Errorf("key %s: %w", k.id, errdef.ErrSignature)
		}
		return nil
	}
	sum := sha256.Sum256(b)
	return k.verifyDigest(sum[:], raw)
}

// VerifyDigest checks a cosign blob signature over the bytes whose SHA-256 is
// digest. An Ed25519 key cannot (ErrNeedsMessage).
func (k *PublicKey) VerifyDigest(digest, sig []byte) error {
	raw, err := decode(sig)
	if err != nil {
		return err
	}
	return k.verifyDigest(digest, raw)
}

func (k *PublicKey) verifyDigest(digest, raw []byte) error {
	ec, ok := k.key.(*ecdsa.PublicKey)
	if !ok {
		return ErrNeedsMessage
	}
	if !ecdsa.VerifyASN1(ec, digest, raw) {
		return fmt.Errorf("key %s: %w", k.id, errdef.ErrSignature)
	}
	return nil
}

// VerifyAny checks sig over b against each key and returns the one that
// signed it. No key, or none that verifies, is errdef.ErrSignature.
func VerifyAny(keys []*PublicKey, b, sig []byte) (*PublicKey, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no trusted key: %w", errdef.ErrSignature)
	}
	if _, err := decode(sig); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.VerifyBlob(b, sig) == nil {
			return k, nil
		}
	}
	if len(keys) == 1 {
		return nil, fmt.Errorf("not signed by key %s: %w", keys[0].id, errdef.ErrSignature)
	}
	return nil, fmt.Errorf("not signed by any of the %d trusted keys: %w", len(keys), errdef.ErrSignature)
}

func encode(raw []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out
}

// decode reads a base64 signature. One that cannot be read cannot be
// trusted either: errdef.ErrSignature.
func decode(sig []byte) ([]byte, error) {
	raw, why := parseSignature(sig)
	if why != "" {
		return nil, fmt.Errorf("%s: %w", why, errdef.ErrSignature)
	}
	return raw, nil
}

// parseSignature reads a base64 signature, or says why it cannot.
func parseSignature(sig []byte) ([]byte, string) {
	if len(sig) > MaxSignatureSize {
		return nil, fmt.Sprintf("signature of %d bytes, over %d", len(sig), MaxSignatureSize)
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sig)))
	if err != nil {
		return nil, fmt.Sprintf("signature is not base64: %v", err)
	}
	return raw, ""
}

// verifies reports whether raw is k's signature over b.
func (k *PublicKey) verifies(b, raw []byte) bool {
	switch key := k.key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(key, b, raw)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(b)
		return ecdsa.VerifyASN1(key, sum[:], raw)
	}
	return false
}
