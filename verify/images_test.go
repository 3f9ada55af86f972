package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"
	"testing"

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

func blobEntry(b []byte) (kittest.Entry, string) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	return kittest.File("images/blobs/sha256/"+h, b), "sha256:" + h
}

// TestForgedImageSignatures crafts kits, each signed by the trusted kit key,
// whose carried image signatures are wrong.
func TestForgedImageSignatures(t *testing.T) {
	kitKey, imageKey, other := kittest.NewKey(t), kittest.NewKey(t), kittest.NewKey(t)
	const imageDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const elsewhere = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	cases := []struct {
		name     string
		signer   *kittest.Key // signs the payload
		carried  *kittest.Key // the key blob
		digest   string       // in the payload
		payload  []byte       // overrides the payload
		dropKey  bool         // leave the key blob out of the kit
		code     int
		substr   string
		trustKey *kittest.Key
	}{
		{name: "good", signer: imageKey, carried: imageKey, digest: imageDigest, trustKey: imageKey},
		{name: "payload for another image", signer: imageKey, carried: imageKey, digest: elsewhere, code: errdef.ExitSignature, substr: "payload signs image " + elsewhere},
		{name: "carried key did not sign", signer: other, carried: imageKey, digest: imageDigest, code: errdef.ExitSignature, substr: "signature not verified"},
		{name: "untrusted key", signer: other, carried: other, digest: imageDigest, trustKey: imageKey, code: errdef.ExitSignature, substr: "not a trusted image key"},
		{name: "key not shipped", signer: imageKey, carried: imageKey, digest: imageDigest, dropKey: true, code: errdef.ExitInvalid, substr: "not shipped"},
		{name: "payload over the limit", signer: imageKey, carried: imageKey, payload: make([]byte, verify.MaxImageSignatureBlob+1), code: errdef.ExitInvalid, substr: "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := c.payload
			if payload == nil {
				payload = kittest.CosignPayload("registry.example/stellaops/app", c.digest)
			}
			sigImg := kittest.CosignSignature(t, c.signer.Private, payload)
			raw, err := sigImg.RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			ke, kd := blobEntry(c.carried.Public.DER())
			se, sd := blobEntry(raw)
			pe, pd := blobEntry(payload)
			content := []kittest.Entry{se, pe}
			if !c.dropKey {
				content = append(content, ke)
			}
			m := kittest.ManifestFor(content)
			m.Images = []manifest.Image{{
				Reference: "registry.example/stellaops/app:1", Digest: imageDigest, MediaType: "application/vnd.oci.image.manifest.v1+json",
				Signatures: []string{sd},
				SignedBy:   []manifest.ImageSignature{{KeyID: kd, Signature: sd, Payload: pd}},
			}}
			sort.Slice(content, func(i, j int) bool { return content[i].Header.Name < content[j].Header.Name })
			p := (&kittest.Craft{Content: content, Manifest: m, Key: kitKey}).Write(t, filepath.Join(t.TempDir(), "k.kit.tar.zst"))
			o := opts(kitKey)
			if c.trustKey != nil {
				o.ImageKeys = []*sign.PublicKey{c.trustKey.Public}
			}
			v, err := verify.File(context.Background(), p, o)
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
