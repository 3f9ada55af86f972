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
		return nil, fmt.Errorf("signature manifest: %w: %w", err, errdef.ErrInvalid)
	}
	var out []SignatureLayer
	for _, l := range m.Layers {
		if l.MediaType == SimpleSigningMediaType {
			out = append(out, SignatureLayer{Digest: l.Digest, Size: l.Size, Signature: []byte(l.Annotations[SignatureAnnotation])})
		}
	}
	return out, nil
}

// ImageError says why an image signature does not verify with a key. It
// is an errdef.ErrSignature: the signature is wrong, not "could not check".
type ImageError struct {
	KeyID string
	// Reason is what is wrong with the signature or its payload; "" when
	// the signature is not the key's.
	Reason string
	// Err is the cause, if any (a malformed payload).
	Err error
}

func (e *ImageError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("key %s: %v", e.KeyID, errdef.ErrSignature)
	}
	return fmt.Sprintf("key %s: %s: %v", e.KeyID, e.Reason, errdef.ErrSignature)
}

// Unwrap returns errdef.ErrSignature and the cause.
func (e *ImageError) Unwrap() []error {
	if e.Err == nil {
		return []error{errdef.ErrSignature}
	}
	return []error{errdef.ErrSignature, e.Err}
}

// VerifyImage checks that sig is k's signature over payload and that payload
// is a cosign container image signature of the image whose manifest digest
// is digest ("sha256:<hex>"). A signature that does not verify, or a payload
// for another image or of another type, is an *ImageError.
func (k *PublicKey) VerifyImage(payload, sig []byte, digest string) error {
	if len(payload) > MaxPayloadSize {
		return &ImageError{KeyID: k.id, Reason: fmt.Sprintf("payload of %d bytes, over %d", len(payload), MaxPayloadSize)}
	}
	raw, why := parseSignature(sig)
	if why != "" {
		return &ImageError{KeyID: k.id, Reason: why}
	}
	if !k.verifies(payload, raw) {
		return &ImageError{KeyID: k.id}
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
		return &ImageError{KeyID: k.id, Reason: "payload: " + err.Error(), Err: err}
	}
	if p.Critical.Type != ImageSignatureType {
		return &ImageError{KeyID: k.id, Reason: fmt.Sprintf("payload type %q, want %q", p.Critical.Type, ImageSignatureType)}
	}
	if p.Critical.Image.Digest != digest {
		return &ImageError{KeyID: k.id, Reason: fmt.Sprintf("payload signs image %s, not %s", p.Critical.Image.Digest, digest)}
	}
	return nil
}

// ParsePublicKey reads a PKIX DER public key (the bytes of a PEM "PUBLIC
// KEY" block, whose SHA-256 is the key id).
func ParsePublicKey(der []byte) (*PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: %w: %w", err, errdef.ErrInvalid)
	}
	return newPublicKey(k)
}

// DER returns the PKIX DER encoding of the public key.
func (k *PublicKey) DER() []byte { return append([]byte(nil), k.der...) }
