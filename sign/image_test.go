package sign_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/sign"
)

const imageDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func payload(typ, digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"registry.example/app"},"image":{"docker-manifest-digest":"` +
		digest + `"},"type":"` + typ + `"},"optional":null}`)
}

func TestVerifyImage(t *testing.T) {
	k, _, _ := newKey(t)
	other, _, _ := newKey(t)
	good := payload(sign.ImageSignatureType, imageDigest)
	sig, err := k.SignBlob(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().VerifyImage(good, sig, imageDigest); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		key     *sign.PrivateKey
		payload []byte
		digest  string
		why     string
	}{
		{"other key", other, good, imageDigest, "signature not verified"},
		{"other image", k, good, "sha256:" + strings.Repeat("2", 64), "payload signs image " + imageDigest},
		{"other type", k, payload("cosign blob signature", imageDigest), imageDigest, "payload type"},
		{"not JSON", k, []byte("not json"), imageDigest, "payload"},
		{"over the limit", k, make([]byte, sign.MaxPayloadSize+1), imageDigest, "over"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.key.SignBlob(c.payload)
			if err != nil {
				t.Fatal(err)
			}
			err = k.Public().VerifyImage(c.payload, s, c.digest)
			if !errors.Is(err, errdef.ErrSignature) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want ErrSignature saying %q", err, c.why)
			}
		})
	}
}

func TestSignatureLayers(t *testing.T) {
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
	"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
	"layers":[
	  {"mediaType":"application/vnd.oci.image.layer.v1.tar","size":1,"digest":"sha256:aa"},
	  {"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":250,"digest":"sha256:bb",
	   "annotations":{"dev.cosignproject.cosign/signature":"MEUC"}}]}`
	ls, err := sign.SignatureLayers([]byte(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Digest != "sha256:bb" || ls[0].Size != 250 || string(ls[0].Signature) != "MEUC" {
		t.Fatalf("layers = %+v", ls)
	}
	if _, err := sign.SignatureLayers([]byte("{")); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestParsePublicKeyDER(t *testing.T) {
	k, _, pub := newKey(t)
	p, err := sign.ParsePublicKey(k.Public().DER())
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID() != k.Public().KeyID() || !bytes.Equal(p.PEM(), pub) {
		t.Fatalf("key %s, want %s", p.KeyID(), k.Public().KeyID())
	}
	if _, err := sign.ParsePublicKey([]byte("junk")); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("junk: %v", err)
	}
}
