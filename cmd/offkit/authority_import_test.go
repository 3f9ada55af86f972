package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
)

const snapIssuer = "https://authority.internal"

// snapshotPair writes a saved discovery + JWKS pair of snapIssuer (one
// Ed25519 key, kid) into dir and returns the two file names.
func snapshotPair(t *testing.T, dir, kid string) (disc, jwks string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: "EdDSA", Use: "sig"}}})
	disc = writeFile(t, filepath.Join(dir, kid, "discovery.json"), `{"issuer":"`+snapIssuer+`","jwks_uri":"`+snapIssuer+`/jwks"}`)
	jwks = writeFile(t, filepath.Join(dir, kid, "jwks.json"), string(j))
	return disc, jwks
}

// snapshotKit builds kit app at version carrying authorityYAML (the
// kit.yaml `authority:` block) and returns its path.
func snapshotKit(t *testing.T, r *runner, f *fixture, version, authorityYAML string) string {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "files", "note.txt"), "note "+version)
	spec := writeFile(t, filepath.Join(src, "kit.yaml"), "name: app\nversion: "+version+"\ncreatedAt: 2026-11-01T00:00:00Z\n"+
		"files:\n  - src: files/note.txt\n"+authorityYAML)
	out := t.TempDir()
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv)
	return filepath.Join(out, "app-"+version+".kit.tar.zst")
}

func kitManifest(t *testing.T, path string) *manifest.Manifest {
	t.Helper()
	h, err := kitfile.ReadHead(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(h.ManifestBytes)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func cachedMeta(t *testing.T, root string) authority.Metadata {
	t.Helper()
	dir, _ := authority.Dir(root, snapIssuer)
	md, err := authority.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// A kit carries a saved discovery + JWKS pair as authority/<host>/… with
// manifest authority[]; install imports it into ROOT/authority/<host>/
// only when it is newer by fetch time: a later kit with an older snapshot
// never rolls the keys back. Each import is an audit.log line.
func TestAuthoritySnapshotKitImport(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	r.now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	pairs := t.TempDir()
	newDisc, newJWKS := snapshotPair(t, pairs, "new-key")
	oldDisc, oldJWKS := snapshotPair(t, pairs, "old-key")
	entry := func(disc, jwks, fetched string) string {
		return "authority:\n  - issuer: " + snapIssuer + "\n    discovery: " + disc + "\n    jwks: " + jwks +
			"\n    fetchedAt: " + fetched + "\n    lifetime: \"00:15:00\"\n"
	}
	k1 := snapshotKit(t, r, f, "1.0.0", entry(newDisc, newJWKS, "2026-11-30T11:55:00Z"))

	// The kit: three entries of role authority and authority[].
	m := kitManifest(t, k1)
	if len(m.Authority) != 1 || m.Authority[0].Issuer != snapIssuer || !m.Authority[0].FetchedAt.Equal(time.Date(2026, 11, 30, 11, 55, 0, 0, time.UTC)) {
		t.Fatalf("manifest authority[]: %+v", m.Authority)
	}
	var paths []string
	for _, e := range m.Entries {
		if e.Role == manifest.RoleAuthority {
			paths = append(paths, e.Path)
		}
	}
	if strings.Join(paths, " ") != "authority/authority.internal/discovery.json authority/authority.internal/jwks.json authority/authority.internal/meta.json" {
		t.Fatalf("authority entries: %v", paths)
	}

	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", k1, "--root", root, "--key", f.pub)
	md := cachedMeta(t, root)
	if !md.Meta.FetchedAt.Equal(m.Authority[0].FetchedAt) || md.Meta.Lifetime() != 15*time.Minute {
		t.Fatalf("imported meta: %+v", md.Meta)
	}
	if ks, _ := authority.ParseJWKS(md.JWKS); strings.Join(ks.IDs(), ",") != "new-key" {
		t.Fatalf("imported keys: %v", ks.IDs())
	}
	st := r.ok("authority", "status", "--root", root)
	if !strings.Contains(st.stdout, snapIssuer) || !strings.Contains(st.stdout, "new-key") || !strings.Contains(st.stdout, "fresh") {
		t.Fatalf("status after import:\n%s", st.stdout)
	}

	// A newer kit whose snapshot is older: the keys stay.
	k2 := snapshotKit(t, r, f, "1.1.0", entry(oldDisc, oldJWKS, "2026-11-29T00:00:00Z"))
	r.ok("install", k2, "--root", root, "--key", f.pub)
	if md2 := cachedMeta(t, root); !md2.Meta.FetchedAt.Equal(md.Meta.FetchedAt) || string(md2.JWKS) != string(md.JWKS) {
		t.Fatalf("an older snapshot rolled the keys back: %+v", md2.Meta)
	}
	// A newer snapshot replaces them.
	k3 := snapshotKit(t, r, f, "1.2.0", entry(oldDisc, oldJWKS, "2026-11-30T11:58:00Z"))
	r.ok("install", k3, "--root", root, "--key", f.pub)
	if ks, _ := authority.ParseJWKS(cachedMeta(t, root).JWKS); strings.Join(ks.IDs(), ",") != "old-key" {
		t.Fatalf("a newer snapshot was not imported: %v", ks.IDs())
	}

	b, err := limit.ReadFile(filepath.Join(root, "audit.log"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["event"] == auditEventImport {
			if rec["issuer"] != snapIssuer || rec["kit"] != "app" {
				t.Errorf("audit record: %v", rec)
			}
			outcomes = append(outcomes, rec["kitVersion"].(string)+"="+rec["outcome"].(string))
		}
	}
	if strings.Join(outcomes, " ") != "1.0.0=imported 1.1.0=kept-newer-cache 1.2.0=imported" {
		t.Fatalf("audit outcomes: %v", outcomes)
	}
}

// Build refuses a snapshot that breaks a rule (exit 11, naming the field):
// a JWKS publishing a private key, discovery naming another issuer, a
// missing fetchedAt; snapshot: true fetches from a loopback issuer and
// refuses one whose discovery names another issuer.
func TestAuthoritySnapshotKitRefused(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	dir := t.TempDir()
	disc, jwks := snapshotPair(t, dir, "k")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pj, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "leaked", Algorithm: "EdDSA"}}})
	privJWKS := writeFile(t, filepath.Join(dir, "private.json"), string(pj))
	other := writeFile(t, filepath.Join(dir, "other.json"), `{"issuer":"https://evil.example","jwks_uri":"https://evil.example/jwks"}`)
	for name, c := range map[string]struct{ yaml, want string }{
		"private key":       {"authority:\n  - {issuer: " + snapIssuer + ", discovery: " + disc + ", jwks: " + privJWKS + ", fetchedAt: 2026-11-30T00:00:00Z}\n", "private"},
		"other issuer":      {"authority:\n  - {issuer: " + snapIssuer + ", discovery: " + other + ", jwks: " + jwks + ", fetchedAt: 2026-11-30T00:00:00Z}\n", "evil.example"},
		"no fetchedAt":      {"authority:\n  - {issuer: " + snapIssuer + ", discovery: " + disc + ", jwks: " + jwks + "}\n", "authority"},
		"http off loopback": {"authority:\n  - {issuer: http://authority.internal, snapshot: true}\n", "http"},
	} {
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "files", "x"), "x")
		spec := writeFile(t, filepath.Join(src, "kit.yaml"), "name: app\nversion: 1.0.0\ncreatedAt: 2026-11-01T00:00:00Z\nfiles:\n  - src: files/x\n"+c.yaml)
		res := r.run("build", "-f", spec, "-o", t.TempDir(), "--key", f.priv)
		if res.code != errdef.ExitInvalid || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%s: exit %d, want 11 naming %q:\n%s", name, res.code, c.want, res.stderr)
		}
		if strings.Contains(res.stderr, `"d":`) {
			t.Errorf("%s: key material in the error", name)
		}
	}

	// snapshot: true from a loopback issuer: fetched at build time.
	iss := newTokenIssuer(t)
	r.now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	k := snapshotKit(t, r, f, "2.0.0", "authority:\n  - issuer: "+iss.URL+"\n    snapshot: true\n")
	if a := kitManifest(t, k).Authority; len(a) != 1 || a[0].Issuer != iss.URL || !a[0].FetchedAt.Equal(r.now) {
		t.Fatalf("snapshot: true: %+v", a)
	}
	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", k, "--root", root, "--key", f.pub)
	if st := r.ok("authority", "status", "--root", root, "--issuer", iss.URL); !strings.Contains(st.stdout, "k1") {
		t.Fatalf("status:\n%s", st.stdout)
	}
}

// Importing snapshots at install keeps package site free of net/http.
func TestSiteStaysFreeOfHTTP(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "../../site", "../../verify").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "net/http" {
			t.Fatal("package site or verify depends on net/http")
		}
	}
}
