package authority

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

func TestNewSnapshotRefuses(t *testing.T) {
	keys := issuerKeys(t)
	jwks := jwksOf(keys...)
	iss := "https://authority.internal"
	disc := []byte(`{"issuer":"https://authority.internal","jwks_uri":"https://authority.internal/jwks"}`)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	md, err := NewSnapshot(iss, disc, jwks, at.Add(300*time.Millisecond), 0)
	if err != nil || !md.Meta.FetchedAt.Equal(at) || md.Meta.Lifetime() != DefaultCacheLifetime || md.Meta.JWKSURI != iss+"/jwks" {
		t.Fatalf("%+v %v", md.Meta, err)
	}
	for name, c := range map[string]struct {
		iss        string
		disc, jwks string
		at         time.Time
		life       time.Duration
	}{
		"other issuer":        {iss, `{"issuer":"https://authority.internal/","jwks_uri":"https://authority.internal/jwks"}`, string(jwks), at, 0},
		"http jwks_uri":       {iss, `{"issuer":"https://authority.internal","jwks_uri":"http://authority.internal/jwks"}`, string(jwks), at, 0},
		"relative jwks_uri":   {iss, `{"issuer":"https://authority.internal","jwks_uri":"/jwks"}`, string(jwks), at, 0},
		"not an object":       {iss, `["issuer"]`, string(jwks), at, 0},
		"private key":         {iss, string(disc), `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, at, 0},
		"symmetric key":       {iss, string(disc), `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, at, 0},
		"no fetch time":       {iss, string(disc), string(jwks), time.Time{}, 0},
		"lifetime over a day": {iss, string(disc), string(jwks), at, 25 * time.Hour},
		"http issuer":         {"http://authority.internal", `{"issuer":"http://authority.internal","jwks_uri":"https://authority.internal/jwks"}`, string(jwks), at, 0},
		"oversized discovery": {iss, `{"issuer":"https://authority.internal","jwks_uri":"https://authority.internal/jwks","x":"` + strings.Repeat("a", MaxDocumentSize) + `"}`, string(jwks), at, 0},
	} {
		_, err := NewSnapshot(c.iss, []byte(c.disc), []byte(c.jwks), c.at, c.life)
		if !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "nWGxne") {
			t.Errorf("%s: the error quotes key material", name)
		}
	}
}

// An import replaces the cache only with a newer snapshot.
func TestImportSnapshotNeverRollsBack(t *testing.T) {
	root := t.TempDir()
	keys := issuerKeys(t)
	iss := "https://authority.internal"
	disc := []byte(`{"issuer":"https://authority.internal","jwks_uri":"https://authority.internal/jwks"}`)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	newer, _ := NewSnapshot(iss, disc, jwksOf(keys[0]), at, 0)
	older, _ := NewSnapshot(iss, disc, jwksOf(keys[2]), at.Add(-time.Hour), 0)
	same, _ := NewSnapshot(iss, disc, jwksOf(keys[3]), at, 0)
	if imp, err := ImportSnapshot(root, newer); err != nil || !imp.Imported {
		t.Fatalf("first import: %+v %v", imp, err)
	}
	for name, md := range map[string]Metadata{"older": older, "as old": same} {
		imp, err := ImportSnapshot(root, md)
		if err != nil || imp.Imported || !imp.CachedFetchedAt.Equal(at) {
			t.Fatalf("%s: %+v %v", name, imp, err)
		}
	}
	got, err := Load(must(Dir(root, iss)))
	if err != nil || string(got.JWKS) != string(newer.JWKS) {
		t.Fatalf("cache after older imports: %v", err)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
