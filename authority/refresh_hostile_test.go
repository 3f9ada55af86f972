package authority

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

// An issuer's jwks_uri is stored in meta.json, which readers bound: one
// over MaxJWKSURILength is refused naming the field (exit 11), and the cache
// already there is kept, still loadable.
func TestRefreshRefusesHugeJWKSURI(t *testing.T) {
	f := newFakeIssuer(t)
	c := newClock()
	root := t.TempDir()
	r := f.refresher(t, root, c)
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeIssuer) { f.jwksURI = f.URL + "/jwks?" + strings.Repeat("a", 100<<10) })
	rep, err := r.Refresh(context.Background())
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "jwks_uri") || len(err.Error()) > 2000 {
		t.Fatalf("a jwks_uri of 100 KiB: %.300v", err)
	}
	if md, lerr := Load(rep.Dir); lerr != nil || md.Meta.JWKSURI != f.URL+"/jwks" {
		t.Errorf("the cache after a refused refresh: %v %.100q", lerr, md.Meta.JWKSURI)
	}
	// A snapshot (a kit's) is checked the same way.
	disc := []byte(`{"issuer":"https://auth.example","jwks_uri":"https://auth.example/jwks?` + strings.Repeat("a", 100<<10) + `"}`)
	if _, err := NewSnapshot("https://auth.example", disc, jwksOf(issuerKeys(t)...), c.Now(), 0); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "jwks_uri") {
		t.Errorf("snapshot with a huge jwks_uri: %.300v", err)
	}
}

// An ETag is kept for revalidation only up to MaxETagLength bytes: a
// longer one is not stored, so meta.json stays within what Load reads and
// the next refresh, unconditional, still works.
func TestRefreshDropsHugeETag(t *testing.T) {
	for name, etag := range map[string]string{
		"huge":         `"` + strings.Repeat("e", 100<<10) + `"`,
		"one too long": `"` + strings.Repeat("e", MaxETagLength-1) + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeIssuer(t)
			f.set(func(f *fakeIssuer) { f.etag = etag })
			c := newClock()
			r := f.refresher(t, t.TempDir(), c)
			rep, err := r.Refresh(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			md, err := Load(rep.Dir)
			if err != nil {
				t.Fatalf("the cache a refresh wrote does not load: %v", err)
			}
			if md.Meta.DiscoveryETag != "" || md.Meta.JWKSETag != "" {
				t.Errorf("ETags kept: %.50q %.50q", md.Meta.DiscoveryETag, md.Meta.JWKSETag)
			}
			c.Advance(10 * time.Minute)
			if rep, err := r.Refresh(context.Background()); err != nil || !rep.Fetched {
				t.Errorf("the next refresh: %+v %v", rep, err)
			}
			var got []string
			f.set(func(f *fakeIssuer) { got = f.condition[len(f.condition)-2:] })
			if got[0] != "" || got[1] != "" {
				t.Errorf("If-None-Match sent: %.50q", got)
			}
		})
	}
}

// A weak ETag, and one of exactly MaxETagLength bytes, are kept and sent
// back: the second refresh revalidates.
func TestRefreshKeepsETag(t *testing.T) {
	for _, etag := range []string{`W/"v1"`, `"` + strings.Repeat("e", MaxETagLength-2) + `"`} {
		f := newFakeIssuer(t)
		f.set(func(f *fakeIssuer) { f.etag = etag })
		c := newClock()
		r := f.refresher(t, t.TempDir(), c)
		if _, err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		rep, err := r.Refresh(context.Background())
		if err != nil || !rep.Revalidated {
			t.Errorf("ETag of %d bytes: %+v %v", len(etag), rep, err)
		}
	}
}

// Save never writes a meta.json that Load would refuse.
func TestSaveRefusesOversizedMeta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authority", "auth.example")
	md := Metadata{Discovery: []byte(`{}`), JWKS: []byte(`{}`), Meta: Meta{Issuer: "https://auth.example", FetchedAt: newClock().Now(),
		JWKSURI: "https://auth.example/" + strings.Repeat("a", MaxMetaSize)}}
	if err := Save(dir, md); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), MetaFile) {
		t.Errorf("Save of a %d-byte jwks_uri: %.300v", len(md.Meta.JWKSURI), err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Save wrote something: %v", err)
	}
}
