package mirror_test

import (
	"crypto/ed25519"
	"crypto/rand"
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
