package sign

import (
	"crypto/x509"
	"encoding/json"
	"fmt"

	"github.com/offkit/offkit/internal/errdef"
)

// Cosign image signatures ("simple signing"), as `cosign sign --key` stores
// them: the tag sha256-<hex>.sig of the image's repository names an OCI
// image manifest whose layers of media type SimpleSigningMediaType each hold
// a JSON payload, with the base64 signature over the payload's exact bytes
// in the layer's SignatureAnnotation. The payload reads
//
//	{"critical": {"identity": {"docker-reference": "REPO"},
//	              "image": {"docker-manifest-digest": "sha256:HEX"},
//	              "type": "cosign container image signature"},
//	 "optional": {...}}
//
// and vouches for the image whose manifest digest it names, nothing else.
// The signature is a blob signature (see the package doc), so the keys that
// sign kits sign images too. The identity is not checked: the digest is what
// is signed, and a kit renames repositories anyway.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	ImageSignatureType     = "cosign container image signature"
)

// MaxPayloadSize bounds a simple-signing payload (cosign's are a few hundred
// bytes) and the signature manifest that lists it.
const MaxPayloadSize = 1 << 20

// SignatureLayer is one simple-signing layer of a cosign signature manifest.
type SignatureLayer struct {
	Digest    string // "sha256:<hex>" of the payload
	Size      int64
	Signature []byte // base64, as in the annotation
}

// SignatureLayers returns the simple-signing layers of a cosign signature
// manifest, in manifest order; layers of other media types are skipped. A
// manifest that does not parse is errdef.ErrInvalid.
func SignatureLayers(manifest []byte) ([]SignatureLayer, error) {
	if len(manifest) > MaxPayloadSize {
		return nil, fmt.Errorf("signature manifest of %d bytes, over %d: %w", len(manifest), MaxPayloadSize, errdef.ErrInvalid)
	}
	var m struct {
		Layers []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("signature manifest: %v: %w", err, errdef.ErrInvalid)
	}
	var out []SignatureLayer
	for _, l := range m.Layers {
		if l.MediaType == SimpleSigningMediaType {
			out = append(out, SignatureLayer{Digest: l.Digest, Size: l.Size, Signature: []byte(l.Annotations[SignatureAnnotation])})
		}
	}
	return out, nil
}

// VerifyImage checks that sig is k's signature over payload and that payload
// is a cosign container image signature of the image whose manifest digest
// is digest ("sha256:<hex>"). A signature that does not verify, or a payload
// for another image or of another type, is errdef.ErrSignature.
func (k *PublicKey) VerifyImage(payload, sig []byte, digest string) error {
	if len(payload) > MaxPayloadSize {
		return fmt.Errorf("payload of %d bytes, over %d: %w", len(payload), MaxPayloadSize, errdef.ErrSignature)
	}
	if err := k.VerifyBlob(payload, sig); err != nil {
		return err
	}
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("key %s: payload: %v: %w", k.id, err, errdef.ErrSignature)
	}
	if p.Critical.Type != ImageSignatureType {
		return fmt.Errorf("key %s: payload type %q, want %q: %w", k.id, p.Critical.Type, ImageSignatureType, errdef.ErrSignature)
	}
	if p.Critical.Image.Digest != digest {
		return fmt.Errorf("key %s: payload signs image %s, not %s: %w", k.id, p.Critical.Image.Digest, digest, errdef.ErrSignature)
	}
	return nil
}

// ParsePublicKey reads a PKIX DER public key (the bytes of a PEM "PUBLIC
// KEY" block, whose SHA-256 is the key id).
func ParsePublicKey(der []byte) (*PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: %v: %w", err, errdef.ErrInvalid)
	}
	return newPublicKey(k)
}

// DER returns the PKIX DER encoding of the public key.
func (k *PublicKey) DER() []byte { return append([]byte(nil), k.der...) }
