package mirror_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/mirror"
)

var bundle = []byte(`{"generatedAt":"2025-11-23T00:00:00Z","advisories":[{"id":"CVE-2025-0001"}]}`)

func verify(t *testing.T, sigFile []byte, data []byte, keys *mirror.KeySet) (mirror.Verified, error) {
	t.Helper()
	s, err := mirror.ParseSignature("bundle.json.jws", sigFile)
	if err != nil {
		return mirror.Verified{}, err
	}
	return s.Verify(bytes.NewReader(data), keys, "bundle.json")
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignatureKinds(t *testing.T) {
	k := newKeys(t)
	rk := rsaKey(t)
	keys, err := mirror.NewKeySet(append(k.set.Keys(), mirror.Key{ID: "mirror-rsa", Public: &rk.PublicKey})...)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		s              mirrortest.Signer
		kind, alg, kid string
	}{
		{mirrortest.Signer{Kind: mirrortest.JWS, Key: k.ed, KeyID: "mirror-ed25519"}, "jws", "EdDSA", "mirror-ed25519"},
		{mirrortest.Signer{Kind: mirrortest.JWS, Key: k.ed}, "jws", "EdDSA", "mirror-ed25519"}, // no kid: the key that verifies
		{mirrortest.Signer{Kind: mirrortest.JWSEncoded, Key: k.ed, KeyID: "mirror-ed25519"}, "jws", "EdDSA", "mirror-ed25519"},
		{mirrortest.Signer{Kind: mirrortest.JWS, Key: k.ec, KeyID: "mirror-p256"}, "jws", "ES256", "mirror-p256"},
		{mirrortest.Signer{Kind: mirrortest.JWSEncoded, Key: k.ec}, "jws", "ES256", "mirror-p256"},
		{mirrortest.Signer{Kind: mirrortest.JWS, Key: rk, KeyID: "mirror-rsa"}, "jws", "RS256", "mirror-rsa"},
		{mirrortest.Signer{Kind: mirrortest.JWSPS256, Key: rk, KeyID: "mirror-rsa"}, "jws", "PS256", "mirror-rsa"},
		{mirrortest.Signer{Kind: mirrortest.Cosign, Key: k.ec}, "cosign", "ES256", "mirror-p256"},
		{mirrortest.Signer{Kind: mirrortest.Cosign, Key: k.ed}, "cosign", "EdDSA", "mirror-ed25519"},
		{mirrortest.Signer{Kind: mirrortest.Cosign, Key: rk}, "cosign", "RS256", "mirror-rsa"},
		{mirrortest.Signer{Kind: mirrortest.DSSE, Key: k.ed, KeyID: "mirror-ed25519"}, "dsse", "EdDSA", "mirror-ed25519"},
		{mirrortest.Signer{Kind: mirrortest.DSSE, Key: k.ed}, "dsse", "EdDSA", "mirror-ed25519"},
	}
	for _, c := range cases {
		t.Run(c.s.Kind+"-"+c.alg+"-"+c.s.KeyID, func(t *testing.T) {
			sig, err := c.s.Sign("bundle.json", bundle)
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify(t, sig, bundle, keys)
			if err != nil {
				t.Fatal(err)
			}
			if v.Kind != c.kind || v.Alg != c.alg || v.KeyID != c.kid || v.Size != int64(len(bundle)) {
				t.Errorf("verified %+v, want %s %s %s", v, c.kind, c.alg, c.kid)
			}
			// One byte more, one byte changed: refused.
			for _, bad := range [][]byte{append(bytes.Clone(bundle), ' '), bytes.Replace(bundle, []byte("0001"), []byte("0002"), 1)} {
				if _, err := verify(t, sig, bad, keys); !errors.Is(err, errdef.ErrSignature) {
					t.Errorf("changed bundle: %v", err)
				}
			}
		})
	}
}

// TestGoJoseInterop: detached JWS written by go-jose (b64:false and
// standard) verify, and what mirrortest writes verifies with go-jose.
func TestGoJoseInterop(t *testing.T) {
	k := newKeys(t)
	for _, key := range []jose.SigningKey{{Algorithm: jose.EdDSA, Key: k.ed}, {Algorithm: jose.ES256, Key: k.ec}} {
		for _, b64 := range []bool{false, true} {
			opts := (&jose.SignerOptions{}).WithBase64(b64)
			s, err := jose.NewSigner(key, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(bundle)
			if err != nil {
				t.Fatal(err)
			}
			compact, err := obj.DetachedCompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify(t, []byte(compact), bundle, k.set)
			if err != nil || v.Alg != string(key.Algorithm) {
				t.Errorf("go-jose %s b64=%v: %+v %v", key.Algorithm, b64, v, err)
			}
		}
	}
	for _, s := range []mirrortest.Signer{k.jws(), k.es256(), {Kind: mirrortest.JWSEncoded, Key: k.ed}} {
		sig, _ := s.Sign("bundle.json", bundle)
		obj, err := jose.ParseDetached(string(sig), bundle, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var pub any = k.ed.Public()
		if s.Alg() == "ES256" {
			pub = &k.ec.PublicKey
		}
		if err := obj.DetachedVerify(bundle, pub); err != nil {
			t.Errorf("go-jose refuses our %s %s: %v", s.Kind, s.Alg(), err)
		}
	}
}

func jwsWith(t *testing.T, hdr map[string]any, payload, sig string) []byte {
	t.Helper()
	b, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b) + "." + payload + "." + sig)
}

// TestSignatureHostile: the hostile signatures, each refused with
// the file named and the documented exit code (5 signature, 11 malformed).
func TestSignatureHostile(t *testing.T) {
	k := newKeys(t)
	good, _ := k.jws().Sign("bundle.json", bundle)
	sig := strings.Split(string(good), ".")[2]
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	otherEd := func() ed25519.PrivateKey { _, p, _ := ed25519.GenerateKey(rand.Reader); return p }()
	untrusted, _ := mirrortest.Signer{Kind: mirrortest.JWS, Key: otherEd, KeyID: "someone-else"}.Sign("bundle.json", bundle)
	wrongKey, _ := mirrortest.Signer{Kind: mirrortest.JWS, Key: otherEd, KeyID: "mirror-ed25519"}.Sign("bundle.json", bundle)
	dssePurpose, _ := mirrortest.Signer{Kind: mirrortest.DSSE, Key: k.ed, Purpose: "attestation"}.Sign("bundle.json", bundle)
	dsseOther, _ := mirrortest.Signer{Kind: mirrortest.DSSE, Key: k.ed}.Sign("bundle.json", []byte(`{}`))
	dsseUntrusted, _ := mirrortest.Signer{Kind: mirrortest.DSSE, Key: otherEd, KeyID: "someone-else"}.Sign("bundle.json", bundle)
	dsseName, _ := mirrortest.Signer{Kind: mirrortest.DSSE, Key: k.ed}.Sign("other.json", bundle)
	var env map[string]any
	json.Unmarshal(dssePurpose, &env)
	env["payloadType"] = "application/vnd.in-toto+json"
	dsseType, _ := json.Marshal(env)
	cosignOther, _ := mirrortest.Signer{Kind: mirrortest.Cosign, Key: otherEd}.Sign("bundle.json", bundle)
	hmacSig := "c2lnbmF0dXJl"

	cases := []struct {
		name     string
		file     []byte
		sentinel error
		want     string
	}{
		{"alg none", jwsWith(t, map[string]any{"alg": "none"}, "", ""), errdef.ErrSignature, `alg "none"`},
		{"alg None", jwsWith(t, map[string]any{"alg": "None"}, "", sig), errdef.ErrSignature, "unsigned"},
		{"HMAC alg with a public key", jwsWith(t, map[string]any{"alg": "HS256", "kid": "mirror-ed25519"}, "", hmacSig), errdef.ErrSignature, "HMAC"},
		{"unknown alg", jwsWith(t, map[string]any{"alg": "ES512"}, "", sig), errdef.ErrSignature, "ES512"},
		{"untrusted kid", untrusted, errdef.ErrSignature, `kid "someone-else" is not a trusted key`},
		{"kid of a key of another type", jwsWith(t, map[string]any{"alg": "EdDSA", "kid": "mirror-p256", "b64": false, "crit": []string{"b64"}}, "", sig), errdef.ErrSignature, "another type"},
		{"trusted kid, other key", wrongKey, errdef.ErrSignature, "does not verify"},
		{"header not JSON", []byte(b64("not json") + ".." + sig), errdef.ErrInvalid, "header is not a JSON object"},
		{"header not base64url", []byte("@@@.." + sig), errdef.ErrInvalid, "not base64url"},
		{"payload not detached", jwsWith(t, map[string]any{"alg": "EdDSA", "b64": false, "crit": []string{"b64"}}, b64(string(bundle)), sig), errdef.ErrInvalid, "not detached"},
		{"b64 false without crit", jwsWith(t, map[string]any{"alg": "EdDSA", "b64": false}, "", sig), errdef.ErrInvalid, "without crit"},
		{"unknown crit", jwsWith(t, map[string]any{"alg": "EdDSA", "b64": false, "crit": []string{"b64", "exp"}}, "", sig), errdef.ErrInvalid, `"exp" is not understood`},
		{"crit names absent header", jwsWith(t, map[string]any{"alg": "EdDSA", "crit": []string{"b64"}}, "", sig), errdef.ErrInvalid, "lacks"},
		{"b64 not a boolean", jwsWith(t, map[string]any{"alg": "EdDSA", "b64": "false", "crit": []string{"b64"}}, "", sig), errdef.ErrInvalid, "b64"},
		{"four parts", []byte(string(good) + ".x"), errdef.ErrInvalid, "three parts"},
		{"JWS JSON serialization", []byte(`{"protected":"e30","signature":"x"}`), errdef.ErrInvalid, "JSON serialization"},
		{"empty file", []byte("\n"), errdef.ErrInvalid, "empty"},
		{"garbage", []byte("not a signature!"), errdef.ErrInvalid, "not a detached JWS"},
		{"oversized", bytes.Repeat([]byte("A"), mirror.MaxSignatureFile+1), errdef.ErrInvalid, "over"},
		{"DSSE other purpose", dssePurpose, errdef.ErrSignature, `purpose "attestation"`},
		{"DSSE other digest", dsseOther, errdef.ErrSignature, "sha256"},
		{"DSSE other subject", dsseName, errdef.ErrSignature, `no subject "bundle.json"`},
		{"DSSE untrusted keyid", dsseUntrusted, errdef.ErrSignature, "someone-else"},
		{"DSSE other payload type", dsseType, errdef.ErrInvalid, "payloadType"},
		{"DSSE not JSON", []byte("{"), errdef.ErrInvalid, "not JSON"},
		{"cosign by an untrusted key", cosignOther, errdef.ErrSignature, "cosign signature does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := verify(t, c.file, bundle, k.set)
			if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bundle.json.jws") {
				t.Fatalf("got %v\nwant %v naming bundle.json.jws and %q", err, c.sentinel, c.want)
			}
			if got, want := errdef.ExitCode(err), errdef.ExitCode(c.sentinel); got != want {
				t.Errorf("exit code %d, want %d", got, want)
			}
		})
	}
	// No keys at all: nothing is trusted.
	if _, err := verify(t, good, bundle, &mirror.KeySet{}); !errors.Is(err, errdef.ErrSignature) {
		t.Errorf("no keys: %v", err)
	}
}

// TestSignatureFileLimit: a signature file of exactly MaxSignatureFile
// bytes is read (and judged on its content), one byte more is refused as
// over the limit.
func TestSignatureFileLimit(t *testing.T) {
	at := bytes.Repeat([]byte("A"), mirror.MaxSignatureFile) // base64 of zeros: a cosign signature
	s, err := mirror.ParseSignature("at.jws", at)
	if err != nil || s.Kind != "cosign" {
		t.Fatalf("at the limit: %v", err)
	}
	_, err = mirror.ParseSignature("over.jws", append(at, 'A'))
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("over the limit: %v", err)
	}
}
