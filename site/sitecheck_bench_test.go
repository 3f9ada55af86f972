package site_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// BenchmarkCheckSite times `offkit verify --root`'s check of a site holding
// a kit with a 64 MiB file among others: every installed byte read once
// and hashed.
func BenchmarkCheckSite(b *testing.B) {
	key := kittest.NewKey(b)
	k := kittest.Build(b, key, "big", "1.0.0", 64<<20, b.TempDir()).Path
	root := filepath.Join(b.TempDir(), "site")
	if _, err := install(b, root, k, key, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := site.NewView(root).Check(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Err(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(c.Bytes)
	}
}
