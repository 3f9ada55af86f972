package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

func TestImageSignatures(t *testing.T) {
	kitKey, imageKey, other := kittest.NewKey(t), kittest.NewKey(t), kittest.NewKey(t)
	res := kittest.ImageKit(t, kitKey, imageKey)
	im := res.Manifest.Images[0]
	if len(im.SignedBy) != 1 || im.SignedBy[0].KeyID != imageKey.Public.KeyID() {
		t.Fatalf("signedBy = %+v", im.SignedBy)
	}
	keyEntry := "images/blobs/sha256/" + strings.TrimPrefix(imageKey.Public.KeyID(), "sha256:")
	found := false
	for _, e := range res.Manifest.Entries {
		found = found || (e.Path == keyEntry && e.Role == manifest.RoleImageBlob)
	}
	if !found {
		t.Fatalf("no entry %s carries the image key", keyEntry)
	}
	ctx := context.Background()

	// Without image keys, the recorded signature is checked.
	o := opts(kitKey)
	v, err := verify.File(ctx, res.Path, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.SignedImages) != 1 || v.SignedImages[0].KeyID != imageKey.Public.KeyID() || v.SignedImages[0].TrustedKey != "" {
		t.Fatalf("signed images = %+v", v.SignedImages)
	}

	// With the right key among the trusted ones.
	o.ImageKeys = []*sign.PublicKey{other.Public, imageKey.Public}
	if v, err = verify.File(ctx, res.Path, o); err != nil {
		t.Fatal(err)
	}
	if len(v.SignedImages) != 1 || v.SignedImages[0].TrustedKey != imageKey.Public.KeyID() {
		t.Fatalf("signed images = %+v", v.SignedImages)
	}

	// With another key only.
	o.ImageKeys = []*sign.PublicKey{other.Public}
	_, err = verify.File(ctx, res.Path, o)
	wantCode(t, err, errdef.ExitSignature, im.Reference)
	wantCode(t, err, errdef.ExitSignature, "not a trusted image key")

	// An image without signature fails as soon as the manifest is read.
	mixed := kittest.ImageKit(t, kitKey, imageKey, nil)
	o.ImageKeys = []*sign.PublicKey{imageKey.Public}
	_, err = verify.File(ctx, mixed.Path, o)
	wantCode(t, err, errdef.ExitSignature, mixed.Manifest.Images[1].Reference)
	o.ImageKeys = nil
	if _, err := verify.File(ctx, mixed.Path, o); err != nil {
		t.Fatal(err)
	}
}

// TestForgedImageSignatures crafts kits, each signed by the trusted kit key,
// whose carried image signatures are wrong; the image layout is otherwise
// valid.
func TestForgedImageSignatures(t *testing.T) {
	kitKey, imageKey, other := kittest.NewKey(t), kittest.NewKey(t), kittest.NewKey(t)
	const repo = "registry.example/stellaops/app"
	const elsewhere = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		signer   *kittest.Key // signs the payload
		carried  *kittest.Key // the key blob
		digest   string       // in the payload; "" for the image's
		payload  []byte       // overrides the payload
		dropKey  bool         // leave the key blob out of the kit
		code     int
		substr   string
		trustKey *kittest.Key
	}{
		{name: "good", signer: imageKey, carried: imageKey, trustKey: imageKey},
		{name: "payload for another image", signer: imageKey, carried: imageKey, digest: elsewhere, code: errdef.ExitSignature, substr: "payload signs image " + elsewhere},
		{name: "carried key did not sign", signer: other, carried: imageKey, code: errdef.ExitSignature, substr: "signature not verified"},
		{name: "untrusted key", signer: other, carried: other, trustKey: imageKey, code: errdef.ExitSignature, substr: "not a trusted image key"},
		{name: "key not shipped", signer: imageKey, carried: imageKey, dropKey: true, code: errdef.ExitInvalid, substr: "not shipped"},
		{name: "payload over the limit", signer: imageKey, carried: imageKey, payload: make([]byte, verify.MaxImageSignatureBlob+1), code: errdef.ExitInvalid, substr: "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := &kittest.OCI{}
			imd := o.Image(t, img)
			payload := c.payload
			if payload == nil {
				d := c.digest
				if d == "" {
					d = string(imd.Digest)
				}
				payload = kittest.CosignPayload(repo, d)
			}
			sd := o.Image(t, kittest.CosignSignature(t, c.signer.Private, payload))
			o.Tag(repo+":1", imd)
			o.Tag(repo+":sha256-"+imd.Digest.Encoded()+".sig", sd)
			kd := c.carried.Public.KeyID()
			if !c.dropKey {
				o.Blob(c.carried.Public.DER(), "")
			}
			pd := "sha256:" + hex.EncodeToString(sha256Sum(payload))
			content := o.Files(t)
			m := o.Manifest(content)
			m.Images = []manifest.Image{{
				Reference: repo + ":1", Digest: string(imd.Digest), MediaType: imd.MediaType,
				Signatures: []string{string(sd.Digest)},
				SignedBy:   []manifest.ImageSignature{{KeyID: kd, Signature: string(sd.Digest), Payload: pd}},
			}}
			p := (&kittest.Craft{Content: content, Manifest: m, Key: kitKey}).Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
			o2 := opts(kitKey)
			if c.trustKey != nil {
				o2.ImageKeys = []*sign.PublicKey{c.trustKey.Public}
			}
			v, err := verify.File(context.Background(), p, o2)
			if c.code == 0 {
				if err != nil || len(v.SignedImages) != 1 {
					t.Fatalf("err = %v, signed images %+v", err, v)
				}
				return
			}
			wantCode(t, err, c.code, c.substr)
		})
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
