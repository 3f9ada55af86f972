package images_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// cosignSign pushes, as cosign sign does, the signature manifest of the
// image digest d in repo, with one layer per payload.
func cosignSign(t *testing.T, key *kittest.Key, repo string, d v1.Hash, payloads ...[]byte) v1.Hash {
	t.Helper()
	if len(payloads) == 0 {
		payloads = [][]byte{kittest.CosignPayload(repo, d.String())}
	}
	return kittest.Push(t, repo+":sha256-"+d.Hex+".sig", kittest.CosignSignature(t, key.Private, payloads...))
}

func TestVerifySignedImage(t *testing.T) {
	host := newRegistry(t)
	base := t.TempDir()
	key, other := kittest.NewKey(t), kittest.NewKey(t)
	_, pub := key.WriteKeys(t, base)
	repo := host + "/stellaops/signed"
	d := kittest.Push(t, repo+":1", randomImage(t, "linux", "amd64"))
	// The first layer is another key's; the second is ours.
	theirs := kittest.CosignSignature(t, other.Private, kittest.CosignPayload(repo, d.String()))
	ours := kittest.CosignPayload(repo, d.String())
	sd := cosignSign(t, key, repo, d, mustPayload(t, theirs), ours)

	dir, got := collect(t, []manifest.ImageSource{{Ref: repo + ":1", Verify: &manifest.ImageVerify{Key: filepath.Base(pub)}}}, images.Options{BaseDir: base})
	sum, _, _ := v1.SHA256(bytes.NewReader(ours))
	want := []manifest.ImageSignature{{KeyID: key.Public.KeyID(), Signature: sd.String(), Payload: sum.String()}}
	if !slices.Equal(got[0].SignedBy, want) {
		t.Errorf("signedBy = %+v, want %+v", got[0].SignedBy, want)
	}
	if !slices.Equal(got[0].Signatures, []string{sd.String()}) {
		t.Errorf("signatures = %v", got[0].Signatures)
	}
	der, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(key.Public.KeyID(), "sha256:")))
	if err != nil || !bytes.Equal(der, key.Public.DER()) {
		t.Errorf("key blob: %v", err)
	}
	for _, n := range refNames(readIndex(t, dir)) {
		if !strings.HasPrefix(n, repo+":") {
			t.Errorf("index.json names %q: the key blob must not be listed", n)
		}
	}
}

// mustPayload returns the first layer's bytes of a signature manifest.
func mustPayload(t *testing.T, sig v1.Image) []byte {
	t.Helper()
	ls, err := sig.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestVerifyRefusals(t *testing.T) {
	host := newRegistry(t)
	base := t.TempDir()
	key, other := kittest.NewKey(t), kittest.NewKey(t)
	key.WriteKeys(t, base)
	repo := host + "/stellaops/app"

	unsigned := kittest.Push(t, repo+":unsigned", randomImage(t, "linux", "amd64"))
	byOther := kittest.Push(t, repo+":other", randomImage(t, "linux", "amd64"))
	cosignSign(t, other, repo, byOther)
	wrongDigest := kittest.Push(t, repo+":wrong", randomImage(t, "linux", "amd64"))
	cosignSign(t, key, repo, wrongDigest, kittest.CosignPayload(repo, unsigned.String()))
	wrongType := kittest.Push(t, repo+":type", randomImage(t, "linux", "amd64"))
	cosignSign(t, key, repo, wrongType, bytes.Replace(kittest.CosignPayload(repo, wrongType.String()), []byte("container image"), []byte("blob"), 1))
	noLayer := kittest.Push(t, repo+":nolayer", randomImage(t, "linux", "amd64"))
	kittest.Push(t, repo+":sha256-"+noLayer.Hex+".sig", randomImage(t, "", ""))
	big := kittest.Push(t, repo+":big", randomImage(t, "linux", "amd64"))
	cosignSign(t, key, repo, big, make([]byte, sign.MaxPayloadSize+1))
	multi := pushIndex(t, repo+":multi", multiArch(t, v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}))
	cosignSign(t, key, repo, multi)

	ta, _ := name.NewTag("stellaops/app:1")
	if err := tarball.WriteToFile(filepath.Join(base, "app.tar"), ta, randomImage(t, "linux", "amd64")); err != nil {
		t.Fatal(err)
	}

	verifyKey := &manifest.ImageVerify{Key: "cosign.pub"}
	for _, tc := range []struct {
		name string
		src  manifest.ImageSource
		want error
		why  string
	}{
		{"unsigned", manifest.ImageSource{Ref: repo + ":unsigned"}, errdef.ErrSignature, "no signature tag"},
		{"other key", manifest.ImageSource{Ref: repo + ":other"}, errdef.ErrSignature, "signature not verified"},
		{"payload for another image", manifest.ImageSource{Ref: repo + ":wrong"}, errdef.ErrSignature, "payload signs image " + unsigned.String()},
		{"payload of another type", manifest.ImageSource{Ref: repo + ":type"}, errdef.ErrSignature, "payload type"},
		{"no simple-signing layer", manifest.ImageSource{Ref: repo + ":nolayer"}, errdef.ErrSignature, "no " + sign.SimpleSigningMediaType},
		{"payload over the limit", manifest.ImageSource{Ref: repo + ":big"}, errdef.ErrInvalid, "over the limit"},
		{"filtered index", manifest.ImageSource{Ref: repo + ":multi", Platforms: []string{"linux/arm64"}}, errdef.ErrInvalid, "platforms"},
		{"docker archive", manifest.ImageSource{Ref: "r.example/stellaops/app:1", Archive: "app.tar"}, errdef.ErrInvalid, "docker archive"},
		{"missing key", manifest.ImageSource{Ref: repo + ":unsigned", Verify: &manifest.ImageVerify{Key: "absent.pub"}}, errdef.ErrNotFound, "absent.pub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.src.Verify == nil {
				tc.src.Verify = verifyKey
			}
			out := filepath.Join(t.TempDir(), "images")
			_, err := images.Collect(context.Background(), []manifest.ImageSource{tc.src}, out, images.Options{BaseDir: base})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.why)
			}
			if tc.want == errdef.ErrSignature && (!strings.Contains(err.Error(), tc.src.Ref) || !strings.Contains(err.Error(), key.Public.KeyID())) {
				t.Errorf("err = %v: does not name the image and the key", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the layout was written before the check: %v", err)
			}
		})
	}

	// The whole index, signed, passes.
	_, got := collect(t, []manifest.ImageSource{{Ref: repo + ":multi", Verify: verifyKey}}, images.Options{BaseDir: base})
	if len(got[0].SignedBy) != 1 || got[0].Digest != multi.String() {
		t.Errorf("index: %+v", got[0])
	}
}

func TestVerifyLayoutSource(t *testing.T) {
	base := t.TempDir()
	key := kittest.NewKey(t)
	key.WriteKeys(t, base)
	img := randomImage(t, "linux", "amd64")
	d := mustDigest(t, img)
	ref := "registry.example/stellaops/app:1.0"
	sig := kittest.CosignSignature(t, key.Private, kittest.CosignPayload("registry.example/stellaops/app", d.String()))
	sd := mustDigest(t, sig)
	writeLayout(t, filepath.Join(base, "signed"), map[string]v1.Image{"1.0": img, "sha256-" + d.Hex + ".sig": sig})
	writeLayout(t, filepath.Join(base, "unsigned"), map[string]v1.Image{"1.0": img})

	// The only image of the layout is picked without layoutRef: its
	// signature manifest is not a candidate.
	src := manifest.ImageSource{Ref: ref, Layout: "signed", Verify: &manifest.ImageVerify{Key: "cosign.pub"}}
	dir, got := collect(t, []manifest.ImageSource{src}, images.Options{BaseDir: base})
	if len(got[0].SignedBy) != 1 || got[0].SignedBy[0].Signature != sd.String() || !slices.Equal(got[0].Signatures, []string{sd.String()}) {
		t.Errorf("image = %+v", got[0])
	}
	if names := refNames(readIndex(t, dir)); !slices.Equal(names, []string{ref, "registry.example/stellaops/app:sha256-" + d.Hex + ".sig"}) {
		t.Errorf("ref names = %v", names)
	}

	src.Layout = "unsigned"
	_, err := images.Collect(context.Background(), []manifest.ImageSource{src}, t.TempDir(), images.Options{BaseDir: base})
	if !errors.Is(err, errdef.ErrSignature) || !strings.Contains(err.Error(), "sha256-"+d.Hex+".sig") {
		t.Errorf("unsigned layout: err = %v, want ErrSignature naming the tag", err)
	}
}
