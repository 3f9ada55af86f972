package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
)

// Install two versions of a kit of signed exports (v2 drops v1's), then:
// status lists the exports with their age, latest and retained; mirror
// verify passes (text, --json, keys from ROOT/keys/mirror/) and writes an
// audit line; damage gives 2, an untrusted key 5, no site 1, a bad command
// line 11.
func TestMirrorVerifyAndStatus(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	r.now = time.Date(2025, 11, 24, 12, 0, 0, 0, time.UTC)
	root := filepath.Join(t.TempDir(), "site")
	mk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	v1, keyFile := kittest.SignedMirrorKit(t, f.key, mk, "feeds", "1.0.0", []string{"20251121T000000Z"}, []string{"20251121T000000Z"})
	v2, _ := kittest.SignedMirrorKit(t, f.key, mk, "feeds", "1.0.1", []string{"20251122T000000Z"}, nil)
	r.ok("install", v1, "--root", root, "--key", f.pub)
	r.ok("install", v2, "--root", root, "--key", f.pub, "--keep-exports", "2")

	st := r.jsonOK(schemas.OutputStatus, "status", "--root", root)
	exports := st["exports"].([]any)
	var got []string
	for _, e := range exports {
		e := e.(map[string]any)
		got = append(got, strings.Join([]string{e["kind"].(string), e["exportId"].(string), e["age"].(string),
			map[bool]string{true: "retained", false: "active"}[e["retained"].(bool)], map[bool]string{true: "latest", false: "-"}[e["latest"].(bool)]}, " "))
	}
	if strings.Join(got, "\n") != "concelier 20251121T000000Z 3d 12h retained -\nconcelier 20251122T000000Z 2d 12h active latest\nexcititor 20251121T000000Z 3d 11h retained latest" {
		t.Fatalf("status exports:\n%s", strings.Join(got, "\n"))
	}
	text := r.ok("status", "--root", root).stdout
	found := false
	for _, l := range strings.Split(text, "\n") {
		found = found || strings.Join(strings.Fields(l), " ") == "concelier 20251122T000000Z age 2d 12h feeds 1.0.1 domains community,primary latest"
	}
	if !found {
		t.Errorf("status text:\n%s", text)
	}

	v := r.jsonOK(schemas.OutputMirrorVerify, "mirror", "verify", "--root", root, "--key", keyFile)
	if v["ok"] != true || v["signatures"].(float64) != 6 || len(v["exports"].([]any)) != 3 {
		t.Fatalf("mirror verify --json: %v", v)
	}
	writeFile(t, filepath.Join(root, "keys", "mirror", "feeds.jwk"), string(must(os.ReadFile(keyFile))))
	if text := r.ok("mirror", "verify", "--root", root).stdout; !strings.Contains(text, "3 exports, 20 files") || !strings.Contains(text, "every signature verifies") {
		t.Errorf("mirror verify text:\n%s", text)
	}
	// PEM keys: named by ID=FILE, or in ROOT/keys/mirror/ by the file name;
	// the JWS kid must match it.
	der := must(x509.MarshalPKIXPublicKey(mk.Public()))
	pemFile := writeFile(t, filepath.Join(t.TempDir(), "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	r.ok("mirror", "verify", "--root", root, "--key", "mirror-ed25519="+pemFile)
	r.fails(errdef.ExitSignature, []string{"mirror", "verify", "--root", root, "--key", pemFile}, `kid "mirror-ed25519" is not a trusted key`)
	os.Remove(filepath.Join(root, "keys", "mirror", "feeds.jwk"))
	writeFile(t, filepath.Join(root, "keys", "mirror", "mirror-ed25519.pem"), string(must(os.ReadFile(pemFile))))
	r.ok("mirror", "verify", "--root", root)
	audit := string(must(os.ReadFile(filepath.Join(root, "audit.log"))))
	if strings.Count(audit, `"event":"mirror-verify"`) != 6 || !strings.Contains(audit, `"signatures":6`) {
		t.Errorf("audit.log:\n%s", audit)
	}

	// An untrusted key: 5, naming the signature.
	_, other := kittest.SignedMirrorKit(t, f.key, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)), "x", "1.0.0", []string{"20251121T000000Z"}, nil)
	r.fails(errdef.ExitSignature, []string{"mirror", "verify", "--root", root, "--key", other}, "bundle.json", "does not verify")
	// A retained bundle changed: 2, naming it.
	bundle := filepath.Join(root, "current", "mirror/concelier/20251121T000000Z/mirror/primary/bundle.json")
	b := must(os.ReadFile(bundle))
	os.Remove(bundle)
	writeFile(t, bundle, strings.Replace(string(b), "CVE-2025-0001", "CVE-2025-9999", 1))
	r.fails(errdef.ExitMismatch, []string{"mirror", "verify", "--root", root}, "mirror/concelier/20251121T000000Z/mirror/primary/bundle.json", "checksum or size mismatch")
	if audit := string(must(os.ReadFile(filepath.Join(root, "audit.log")))); !strings.Contains(audit, `"exitCode":2`) {
		t.Errorf("a failed check is not in audit.log:\n%s", audit)
	}
	r.fails(errdef.ExitNotFound, []string{"mirror", "verify", "--root", filepath.Join(t.TempDir(), "none"), "--key", keyFile})
	r.fails(errdef.ExitInvalid, []string{"mirror", "verify"}, "--root is required")
	r.fails(errdef.ExitInvalid, []string{"install", v2, "--root", root, "--key", f.pub, "--keep-exports", "0"}, "--keep-exports")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
