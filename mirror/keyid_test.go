package mirror_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/mirror"
)

// A key file whose kid is far over the id limit (up to MaxKeyFile) is
// refused naming the file and the field, quoting only the head of the id:
// the message does not carry the file's bytes.
func TestKeyFileHugeKid(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	kid := strings.Repeat("k", 512<<10)
	p := filepath.Join(t.TempDir(), "huge-kid.jwk")
	if err := os.WriteFile(p, jwkOf(t, pub, kid), 0o644); err != nil {
		t.Fatal(err)
	}
	err := (&mirror.KeySet{}).AddFile(p, "", true)
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "key id") {
		t.Fatalf("kid of %d bytes: %.300v", len(kid), err)
	}
	if n := len(err.Error()); n > 1024 {
		t.Errorf("the error is %d bytes", n)
	}
	if !strings.Contains(err.Error(), "(524288 bytes)") {
		t.Errorf("the error does not say how long the id is: %.400v", err)
	}
}

// A signature file quotes what it names (alg, kid, payloadType) clipped in
// its errors: a file of 64 KiB does not end up whole in a message, and the
// message still names the file and the field.
func TestSignatureErrorsClipWhatTheyQuote(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	keys, err := mirror.NewKeySet(mirror.Key{ID: "trusted", Public: pub})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("Z", 40<<10)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	sigPart := b64("signature-bytes")
	for _, c := range []struct {
		name, file, field string
		verifier          bool // the error comes from NewVerifier
	}{
		{"alg", b64(`{"alg":"`+huge+`"}`) + ".." + sigPart, "JWS header alg", false},
		{"crit", b64(`{"alg":"EdDSA","crit":["`+huge+`"]}`) + ".." + sigPart, "JWS header crit", false},
		{"kid", b64(`{"alg":"EdDSA","kid":"`+huge+`"}`) + ".." + sigPart, "is not a trusted key", true},
		{"payloadType", `{"payloadType":"` + huge + `","payload":"e30=","signatures":[{"sig":"AA=="}]}`, "DSSE payloadType", false},
	} {
		name := "bundle.json.jws"
		sig, err := mirror.ParseSignature(name, []byte(c.file))
		if c.verifier {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			_, err = sig.NewVerifier(keys, "bundle.json")
		}
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %.300v", c.name, err)
			continue
		}
		if n := len(err.Error()); n > 1024 {
			t.Errorf("%s: an error of %d bytes", c.name, n)
		}
	}
}
