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

func TestKeySetAddFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub1, _, _ := ed25519.GenerateKey(rand.Reader)
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	pemFile := write("site-key.pub", pemOf(t, pub1))
	jwkFile := write("other.jwk", jwkOf(t, pub2, ""))
	tp, _ := mirror.Thumbprint(pub2)

	ids := func(s *mirror.KeySet) string {
		var out []string
		for _, k := range s.Keys() {
			out = append(out, k.ID)
		}
		return strings.Join(out, " ")
	}
	// As kit.yaml's {path, id}: the id names either kind of file.
	s := &mirror.KeySet{}
	if err := s.AddFile(pemFile, "pem-id", false); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFile(jwkFile, "jwk-id", false); err != nil {
		t.Fatal(err)
	}
	if got := ids(s); got != "pem-id jwk-id" {
		t.Errorf("ids %q", got)
	}
	// As ROOT/keys/mirror/: the file name names a PEM key; a JWK names
	// itself (no kid: its thumbprint).
	s = &mirror.KeySet{}
	if err := s.AddFile(pemFile, "site-key", true); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFile(jwkFile, "other", true); err != nil {
		t.Fatal(err)
	}
	if got := ids(s); got != "site-key "+tp {
		t.Errorf("ids %q, want site-key %s", got, tp)
	}

	missing := filepath.Join(dir, "missing.pub")
	if err := s.AddFile(missing, "", false); !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if err := s.AddFile(pemFile, "site-key", true); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), pemFile) {
		t.Errorf("an id given twice: %v", err)
	}
	big := write("big.pem", make([]byte, mirror.MaxKeyFile+1))
	if err := s.AddFile(big, "", false); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), big) {
		t.Errorf("over MaxKeyFile: %v", err)
	}
	if err := s.AddFile(write("junk.pem", []byte("not a key")), "", false); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("not a key: %v", err)
	}
}
