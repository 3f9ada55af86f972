package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
)

// authorityStatusSchema is schemas/output/authority-status.schema.json.
const authorityStatusSchema = "output/authority-status.schema.json"

// offkit authority status reads the cache and shows each state of the
// tolerance timeline; --check exits 9 once expired.
func TestAuthorityStatus(t *testing.T) {
	root := t.TempDir()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	const issuer = "https://authority.internal"
	dir, err := authority.Dir(root, issuer)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := authority.Save(dir, authority.Metadata{
		Discovery: []byte(`{"issuer":"` + issuer + `","jwks_uri":"https://authority.internal/jwks"}`), JWKS: jwks,
		Meta: authority.Meta{Issuer: issuer, JWKSURI: issuer + "/jwks", FetchedAt: at, LifetimeSeconds: 300},
	}); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t)

	r.now = at.Add(2 * time.Minute)
	out := r.ok("authority", "status", "--root", root).stdout
	for _, want := range []string{"issuer       https://authority.internal", "state        fresh, 13m0s left", "key ids      k1",
		"fetched at   2026-11-30T12:00:00Z", "valid until  2026-11-30T12:15:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	r.now = at.Add(6 * time.Minute)
	v := r.jsonOK(authorityStatusSchema, "authority", "status", "--root", root, "--issuer", issuer)
	is := v["issuers"].([]any)[0].(map[string]any)
	if is["state"] != "within tolerance" || is["remainingSeconds"] != float64(540) || is["keyIds"].([]any)[0] != "k1" {
		t.Fatalf("json: %v", is)
	}
	out = r.ok("authority", "status", "--root", root, "--offline-cache-tolerance", "00:30:00").stdout
	if !strings.Contains(out, "within tolerance, 29m0s left") {
		t.Fatalf("30 min tolerance:\n%s", out)
	}

	r.now = at.Add(15*time.Minute + time.Second)
	out = r.ok("authority", "status", "--root", root).stdout
	if !strings.Contains(out, "state        expired") || !strings.Contains(out, "past its lifetime 5m0s and the offline tolerance 10m0s") {
		t.Fatalf("expired:\n%s", out)
	}
	res := r.run("authority", "status", "--root", root, "--check")
	if res.code != errdef.ExitExpired || !strings.Contains(res.stderr, "authority metadata expired for https://authority.internal") {
		t.Fatalf("--check: exit %d\n%s", res.code, res.stderr)
	}
	r.now = at.Add(5*time.Minute + time.Second)
	if out := r.ok("authority", "status", "--root", root, "--no-offline-cache-fallback").stdout; !strings.Contains(out, "state        expired") {
		t.Fatalf("fallback off:\n%s", out)
	}

	r.fails(errdef.ExitNotFound, []string{"authority", "status", "--root", root, "--issuer", "https://other.internal"}, "other.internal")
	r.fails(errdef.ExitInvalid, []string{"authority", "status"}, "--root is required")
	empty := t.TempDir()
	if out := r.ok("authority", "status", "--root", empty).stdout; !strings.Contains(out, "no cached Authority metadata") {
		t.Fatalf("empty site: %s", out)
	}
	v = r.jsonOK(authorityStatusSchema, "authority", "status", "--root", filepath.Join(empty))
	if len(v["issuers"].([]any)) != 0 {
		t.Fatalf("empty site json: %v", v)
	}
}
