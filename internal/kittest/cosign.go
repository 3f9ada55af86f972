package kittest

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// CosignPayload returns the simple-signing payload that `cosign sign`
// signs for the image of digest ("sha256:<hex>") in repository repo.
func CosignPayload(repo, digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` +
		digest + `"},"type":"` + sign.ImageSignatureType + `"},"optional":null}`)
}

// CosignSignature returns the signature manifest that `cosign sign --key`
// pushes as tag sha256-<hex>.sig: an OCI image with one simple-signing layer
// per payload, each annotated with key's signature over its bytes.
func CosignSignature(t testing.TB, key *sign.PrivateKey, payloads ...[]byte) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, p := range payloads {
		sig, err := key.SignBlob(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(p, sign.SimpleSigningMediaType),
			Annotations: map[string]string{sign.SignatureAnnotation: string(sig)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// ImageKit builds a kit signed by kitKey holding one image per signer,
// pulled from a registry on loopback: image i (repository stellaops/img<i>)
// is signed by signers[i] the way cosign signs and built with
// `verify: {key}`, or, for a nil signer, unsigned and built without verify.
func ImageKit(t testing.TB, kitKey *Key, signers ...*Key) *kit.BuildResult {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	dir := t.TempDir()
	spec := &manifest.Spec{Name: "images", Version: "1.0.0", CreatedAt: &Created}
	for i, signer := range signers {
		repo := fmt.Sprintf("%s/stellaops/img%d", host, i)
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		d := Push(t, repo+":1", img)
		src := manifest.ImageSource{Ref: repo + ":1"}
		if signer != nil {
			Push(t, repo+":sha256-"+d.Hex+".sig", CosignSignature(t, signer.Private, CosignPayload(repo, d.String())))
			pub := fmt.Sprintf("img%d.pub", i)
			if err := os.WriteFile(filepath.Join(dir, pub), signer.PublicPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			src.Verify = &manifest.ImageVerify{Key: pub}
		}
		spec.Images = append(spec.Images, src)
	}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: kitKey.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Push writes img to the registry reference ref and returns its digest.
func Push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
