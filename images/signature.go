package images

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// maxKeyFile bounds a public key file named by ImageSource.Verify.
const maxKeyFile = 64 << 10

// loadKey reads the cosign public key file of an image source (a missing
// file is errdef.ErrNotFound, one over maxKeyFile or not a regular file
// errdef.ErrInvalid; errors name path).
func loadKey(ref, path string) (*sign.PublicKey, error) {
	// A regular file only: a named pipe is refused, not waited on.
	b, err := limit.ReadRegularFile(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("image %q: verify key: %w", ref, err)
	}
	k, err := sign.LoadPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("image %q: verify key %s: %w", ref, path, err)
	}
	return k, nil
}

// checkSignature finds a cosign signature of the image digest by key in the
// signature manifest the source tags sha256-<hex>.sig, and returns it. The
// payload and the key (as PKIX DER, named by the key id) join the blobs of
// the plan, so that the kit carries all a site needs to check it again. No
// valid signature is errdef.ErrSignature, naming the image and the key.
func (p *sourcePlan) checkSignature(ctx context.Context, key *sign.PublicKey, keyPath string, digest v1.Hash) (manifest.ImageSignature, error) {
	fail := func(why string) (manifest.ImageSignature, error) {
		return manifest.ImageSignature{}, fmt.Errorf("image %q (%s): no cosign signature by key %s (%s): %s: %w",
			p.ref, digest, keyPath, key.KeyID(), why, errdef.ErrSignature)
	}
	if p.rootSig == nil {
		return fail("the source has no signature tag " + digest.Algorithm + "-" + digest.Hex + ".sig")
	}
	layers, err := sign.SignatureLayers(p.rootSig.data)
	if err != nil {
		return fail(fmt.Sprintf("signature manifest %s: %v", p.rootSig.desc.Digest, err))
	}
	var why []string
	for _, l := range layers {
		// A payload that cannot be read is "could not check", not "wrong".
		payload, err := p.payload(ctx, l)
		if err != nil {
			return manifest.ImageSignature{}, err
		}
		if err := key.VerifyImage(payload, l.Signature, digest.String()); err != nil {
			why = append(why, fmt.Sprintf("layer %s: %s", l.Digest, reason(err)))
			continue
		}
		h, err := v1.NewHash(key.KeyID())
		if err != nil {
			return manifest.ImageSignature{}, err
		}
		p.addInline(h, key.DER(), "")
		return manifest.ImageSignature{KeyID: key.KeyID(), Signature: p.rootSig.desc.Digest.String(), Payload: l.Digest}, nil
	}
	if len(why) == 0 {
		return fail(fmt.Sprintf("signature manifest %s has no %s layer", p.rootSig.desc.Digest, sign.SimpleSigningMediaType))
	}
	return fail(strings.Join(why, "; "))
}

// payload reads the simple-signing payload of a signature layer, at most
// sign.MaxPayloadSize bytes, checked against its digest.
func (p *sourcePlan) payload(ctx context.Context, l sign.SignatureLayer) ([]byte, error) {
	h, err := v1.NewHash(l.Digest)
	if err == nil {
		err = checkDigest(h)
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: signature manifest %s: payload digest %q: %w: %w", p.ref, p.rootSig.desc.Digest, l.Digest, err, errdef.ErrInvalid)
	}
	if l.Size < 0 || l.Size > sign.MaxPayloadSize {
		return nil, fmt.Errorf("image %q: signature manifest %s: payload %s of %d bytes, over the limit of %d: %w", p.ref, p.rootSig.desc.Digest, l.Digest, l.Size, sign.MaxPayloadSize, errdef.ErrInvalid)
	}
	d := v1.Descriptor{Digest: h, Size: l.Size}
	rc, err := p.origin.blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readSmall(p.ref, d, rc)
}

// reason words a sign.VerifyImage failure for a list of reasons that ends
// with the key's id and errdef.ErrSignature already.
func reason(err error) string {
	var ie *sign.ImageError
	switch {
	case !errors.As(err, &ie):
		return err.Error()
	case ie.Reason == "":
		return "not signed by this key"
	}
	return ie.Reason
}
