package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// Limits on the blobs kept in memory to check image signatures: each
// signature manifest, payload and key at most MaxImageSignatureBlob bytes,
// all of them together at most MaxImageSignatureBytes.
const (
	MaxImageSignatureBlob  = sign.MaxPayloadSize
	MaxImageSignatureBytes = 16 << 20
)

// SignedImage is an image whose cosign signature was checked again.
type SignedImage struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// KeyID is the key the kit recorded (images[].signedBy).
	KeyID string `json:"keyId"`
	// TrustedKey is the Options.ImageKeys key that verified the signature;
	// "" when no image keys were given.
	TrustedKey string `json:"trustedKey,omitempty"`
}

// imageSigs keeps the blobs that the manifest's images[].signedBy names
// while the kit streams, and checks the signatures once every byte has
// been verified.
type imageSigs struct {
	m    *manifest.Manifest
	keys []*sign.PublicKey
	kept map[string][]byte // by entry path; nil until the entry has streamed
}

// newImageSigs lists the blobs to keep. With trusted image keys, every
// image must have a recorded signature (else errdef.ErrSignature); every
// blob a signature names must be a shipped entry within the limits (else
// errdef.ErrInvalid).
func newImageSigs(m *manifest.Manifest, keys []*sign.PublicKey) (*imageSigs, error) {
	s := &imageSigs{m: m, keys: keys, kept: map[string][]byte{}}
	var total int64
	for _, im := range m.Images {
		if len(im.SignedBy) == 0 && len(keys) > 0 {
			return nil, fmt.Errorf("image %q: no cosign signature recorded (its kit.yaml source had no verify key), and trusted image keys were given: %w", im.Reference, errdef.ErrSignature)
		}
		for _, sb := range im.SignedBy {
			for _, d := range []string{sb.KeyID, sb.Signature, sb.Payload} {
				p := manifest.ImageBlobDir + strings.TrimPrefix(d, "sha256:")
				if _, ok := s.kept[p]; ok {
					continue
				}
				i, found := slices.BinarySearchFunc(m.Entries, p, func(e manifest.Entry, p string) int { return strings.Compare(e.Path, p) })
				if !found || m.Entries[i].InBase || "sha256:"+m.Entries[i].SHA256 != d {
					return nil, fmt.Errorf("image %q: signature blob %s is not shipped in the kit: %w", im.Reference, d, errdef.ErrInvalid)
				}
				if n := m.Entries[i].Size; n > MaxImageSignatureBlob || total+n > MaxImageSignatureBytes {
					return nil, fmt.Errorf("image %q: signature blob %s: %d bytes, over the limit of %d (%d in all): %w", im.Reference, d, n, MaxImageSignatureBlob, MaxImageSignatureBytes, errdef.ErrInvalid)
				}
				total += m.Entries[i].Size
				s.kept[p] = nil
			}
		}
	}
	return s, nil
}

// wants reports whether the entry's bytes are to be kept.
func (s *imageSigs) wants(e manifest.Entry) bool {
	_, ok := s.kept[e.Path]
	return ok
}

// keep records the verified bytes of an entry.
func (s *imageSigs) keep(e manifest.Entry, b []byte) {
	if s.wants(e) {
		s.kept[e.Path] = b
	}
}

func (s *imageSigs) blob(d string) []byte {
	return s.kept[manifest.ImageBlobDir+strings.TrimPrefix(d, "sha256:")]
}

// check verifies each recorded signature: the carried key, named by its id,
// signed the payload, which is a cosign image signature of the image's
// digest, in a layer of the carried signature manifest; and, with trusted
// image keys, one of them signed it too. A failure is errdef.ErrSignature
// naming the image.
func (s *imageSigs) check() ([]SignedImage, error) {
	var out []SignedImage
	for _, im := range s.m.Images {
		var picked *SignedImage
		for _, sb := range im.SignedBy {
			key, err := sign.ParsePublicKey(s.blob(sb.KeyID))
			if err == nil && key.KeyID() != sb.KeyID {
				err = fmt.Errorf("carried key is %s: %w", key.KeyID(), errdef.ErrSignature)
			}
			if err != nil {
				return nil, fmt.Errorf("image %q: key %s: %w", im.Reference, sb.KeyID, err)
			}
			layers, err := sign.SignatureLayers(s.blob(sb.Signature))
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", im.Reference, err)
			}
			i := slices.IndexFunc(layers, func(l sign.SignatureLayer) bool { return l.Digest == sb.Payload })
			if i < 0 {
				return nil, fmt.Errorf("image %q: signature manifest %s has no simple-signing layer %s: %w", im.Reference, sb.Signature, sb.Payload, errdef.ErrSignature)
			}
			payload, sig := s.blob(sb.Payload), layers[i].Signature
			if err := key.VerifyImage(payload, sig, im.Digest); err != nil {
				return nil, fmt.Errorf("image %q: cosign signature %s: %w", im.Reference, sb.Signature, err)
			}
			si := SignedImage{Reference: im.Reference, Digest: im.Digest, KeyID: sb.KeyID}
			for _, k := range s.keys {
				if k.VerifyImage(payload, sig, im.Digest) == nil {
					si.TrustedKey = k.KeyID()
					break
				}
			}
			if picked == nil && (len(s.keys) == 0 || si.TrustedKey != "") {
				picked = &si
			}
		}
		if picked == nil && len(im.SignedBy) > 0 {
			ids := make([]string, len(im.SignedBy))
			for i, sb := range im.SignedBy {
				ids[i] = sb.KeyID
			}
			return nil, fmt.Errorf("image %q: signed by %s, which is not a trusted image key: %w", im.Reference, strings.Join(ids, ", "), errdef.ErrSignature)
		}
		if picked != nil {
			out = append(out, *picked)
		}
	}
	return out, nil
}
