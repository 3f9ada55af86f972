// Package debugtest holds test helpers that need an installed site with a
// debug store (package kittest cannot import site: site's own tests use
// kittest).
package debugtest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

var testKey struct {
	once sync.Once
	key  *kittest.Key
}

// Site makes a site with one kit, symbols 1.0.0, whose debug: source is
// the .build-id tree of a gcc-built program, installed by site.Install; it
// returns the site root and the program.
func Site(t *testing.T) (string, *kittest.DebugProgram) {
	t.Helper()
	prog := kittest.GCCProgram(t, t.TempDir(), "")
	testKey.once.Do(func() { testKey.key = kittest.NewKey(t) })
	key := testKey.key
	res := kittest.DebugKit(t, key, "symbols", "1.0.0", prog)
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}
	if _, err := s.Install(context.Background(), res.Path, o); err != nil {
		t.Fatal(err)
	}
	return root, prog
}
