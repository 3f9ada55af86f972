package site_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// BenchmarkCheckMirror times `offkit mirror verify`'s check of a site
// holding a Concelier export whose primary bundle is 64 MiB (Ed25519 JWS,
// RFC 7797 unencoded payload) and whose community bundle is cosign-signed:
// every byte read once, hashed and its signature verified.
func BenchmarkCheckMirror(b *testing.B) {
	key := kittest.NewKey(b)
	mk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	k, keyFile := kittest.SignedMirrorKitSized(b, key, mk, "feeds", "1.0.0", []string{"20251121T000000Z"}, nil, 64<<20)
	root := filepath.Join(b.TempDir(), "site")
	if _, err := install(b, root, k, key, nil); err != nil {
		b.Fatal(err)
	}
	keys := mirrorKeys(b, keyFile)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := site.NewView(root).CheckMirror(context.Background(), keys)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Err(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(c.Bytes)
	}
}
