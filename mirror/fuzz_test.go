package mirror_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// fuzzKey is a fixed Ed25519 key, so the committed corpus
// (testdata/fuzz/FuzzParseSignature) holds signatures that verify.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// FuzzParseSignature: any signature file is parsed or refused with
// ErrInvalid or ErrSignature, never a panic; what parses has one of the
// three kinds; and nothing verifies against data it was not made for or
// without a trusted key.
func FuzzParseSignature(f *testing.F) {
	for _, kind := range []string{mirrortest.JWS, mirrortest.JWSEncoded, mirrortest.Cosign, mirrortest.DSSE} {
		sig, err := mirrortest.Signer{Kind: kind, Key: fuzzKey, KeyID: "fuzz"}.Sign("bundle.json", bundle)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sig, bundle)
	}
	keys, err := mirror.NewKeySet(mirror.Key{ID: "fuzz", Public: fuzzKey.Public()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file, data []byte) {
		s, err := mirror.ParseSignature("f.jws", file)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) && !errors.Is(err, errdef.ErrSignature) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		switch s.Kind {
		case manifest.MirrorSigJWS, manifest.MirrorSigCosign, manifest.MirrorSigDSSE:
		default:
			t.Fatalf("kind %q", s.Kind)
		}
		if _, err := s.Verify(bytes.NewReader(data), &mirror.KeySet{}, "bundle.json"); err == nil {
			t.Fatal("verified with no trusted key")
		}
		v, err := s.Verify(bytes.NewReader(data), keys, "bundle.json")
		if err == nil {
			// Only a real signature by fuzzKey over data verifies: sign
			// data the same way and compare the verdict on other data.
			if v.KeyID != "fuzz" {
				t.Fatalf("verified by %q", v.KeyID)
			}
			other := append(bytes.Clone(data), 'x')
			if _, err := s.Verify(bytes.NewReader(other), keys, "bundle.json"); err == nil {
				t.Fatalf("%s signature verifies %q and %q", s.Kind, data, other)
			}
		}
	})
}
