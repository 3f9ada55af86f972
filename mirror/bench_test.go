package mirror

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"

	"github.com/offkit/offkit/internal/copybuf"
)

// BenchmarkVerifyBundle measures the one streaming read of a 64 MiB
// bundle (made up as it is read) through each signature kind and the JSON
// check, as Open does: `go test -run '^$' -bench VerifyBundle ./mirror/`.
// EdDSA and cosign-EdDSA need a real signature over the whole stream,
// which Ed25519 cannot make in one pass, so they are measured with a wrong
// signature: the work (SHA-512 of R || A || M, the curve check) is the same.
func BenchmarkVerifyBundle(b *testing.B) {
	size := streamSize((64 << 20) / int64(len(streamItem)))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	keys, _ := NewKeySet(Key{ID: "ec", Public: &ec.PublicKey}, Key{ID: "ed", Public: edPub})
	jws := func(alg, kid string, b64 bool) string {
		h := map[string]any{"alg": alg, "kid": kid}
		if !b64 {
			h["b64"], h["crit"] = false, []string{"b64"}
		}
		hb, _ := json.Marshal(h)
		return base64.RawURLEncoding.EncodeToString(hb) + ".." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	}
	cases := []struct{ name, file string }{
		{"jws-ES256-b64false", jws("ES256", "ec", false)},
		{"jws-ES256-b64", jws("ES256", "ec", true)},
		{"jws-EdDSA-b64false", jws("EdDSA", "ed", false)},
		{"cosign", base64.StdEncoding.EncodeToString(make([]byte, 70))},
		{"sha256+json-only", ""},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var w io.Writer = io.Discard
				var v *Verifier
				if c.file != "" {
					s, err := ParseSignature("bundle.json.jws", []byte(c.file))
					if err != nil {
						b.Fatal(err)
					}
					if v, err = s.NewVerifier(keys, "bundle.json"); err != nil {
						b.Fatal(err)
					}
					w = v
				} else {
					w = sha256.New()
				}
				js := &jsonScan{}
				if _, err := copybuf.Copy(io.MultiWriter(w, js), &bundleStream{n: size}); err != nil {
					b.Fatal(err)
				}
				if v != nil {
					v.Finish() // a wrong signature: the verdict is not the point
				}
				if err := js.end(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
