package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
)

// key generate never replaces a key file, even one that appears between a
// check and the write (O_EXCL).
func TestKeyGenerateRefusesOverwrite(t *testing.T) {
	r := newRunner(t)
	prefix := filepath.Join(t.TempDir(), "site")
	r.ok("key", "generate", "--output-key-prefix", prefix)
	before, _ := os.ReadFile(prefix + ".key")
	r.fails(errdef.ExitInvalid, []string{"key", "generate", "--output-key-prefix", prefix}, prefix+".key", "refusing to overwrite")
	after, _ := os.ReadFile(prefix + ".key")
	if !bytes.Equal(before, after) {
		t.Errorf("key generate replaced %s.key", prefix)
	}
	// Only the public half exists: the private key is not written either.
	pubOnly := filepath.Join(t.TempDir(), "x")
	writeFile(t, pubOnly+".pub", "not mine\n")
	r.fails(errdef.ExitInvalid, []string{"key", "generate", "--output-key-prefix", pubOnly}, pubOnly+".pub")
	if _, err := os.Stat(pubOnly + ".key"); err == nil {
		t.Errorf("key generate left %s.key beside a public key it did not write", pubOnly)
	}
}

// sign does not silently replace a kit's signer.
func TestSignKeepsSigner(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	k := f.kit(t, "app", "1.0.0")
	r.ok("sign", k, "--key", f.priv) // the same signer: fine
	other := kittest.NewKey(t)
	otherPriv, otherPub := other.WriteKeys(t, t.TempDir())
	r.fails(errdef.ExitInvalid, []string{"sign", k, "--key", otherPriv}, f.key.Public.KeyID(), "--replace-signer")
	r.ok("verify", k, "--key", f.pub)
	r.ok("sign", k, "--key", otherPriv, "--replace-signer")
	r.ok("verify", k, "--key", otherPub)
	r.fails(errdef.ExitSignature, []string{"verify", k, "--key", f.pub})
}

func buildSpec(t *testing.T, extra string) (spec, rules string) {
	t.Helper()
	src := t.TempDir()
	rules = writeFile(t, filepath.Join(src, "rules", "app.rules.yaml"), kittest.Rules)
	spec = writeFile(t, filepath.Join(src, "kit.yaml"), "name: app\nversion: 1.0.0\ncreatedAt: 2025-01-01T00:00:00Z\n"+extra+"rules:\n  - src: rules/app.rules.yaml\n")
	return spec, rules
}

// build refuses a kit that has already expired, unless --allow-expired.
func TestBuildExpired(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	spec, _ := buildSpec(t, "expiresAt: 2026-01-01T00:00:00Z\n")
	out := t.TempDir()
	r.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.fails(errdef.ExitExpired, []string{"build", "-f", spec, "-o", out, "--key", f.priv}, "expiresAt", "already past", "--allow-expired")
	if names, _ := os.ReadDir(out); len(names) != 0 {
		t.Errorf("a refused build wrote %v", names)
	}
	res := r.ok("build", "-f", spec, "-o", out, "--key", f.priv, "--allow-expired")
	if !strings.Contains(res.stderr, "already expired") {
		t.Errorf("build --allow-expired: no warning:\n%s", res.stderr)
	}
}

// build never silently replaces a kit file whose bytes differ.
func TestBuildOverwrite(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	spec, rules := buildSpec(t, "")
	out := t.TempDir()
	k := filepath.Join(out, "app-1.0.0.kit.tar.zst")
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv)
	first, _ := os.ReadFile(k)
	// The same inputs give the same bytes: nothing to refuse.
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv)
	writeFile(t, rules, kittest.Rules+"# changed\n")
	r.fails(errdef.ExitInvalid, []string{"build", "-f", spec, "-o", out, "--key", f.priv}, k, "--overwrite")
	if now, _ := os.ReadFile(k); !bytes.Equal(now, first) {
		t.Fatalf("a refused build replaced %s", k)
	}
	r.ok("verify", k, "--key", f.pub)
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv, "--overwrite")
	if now, _ := os.ReadFile(k); bytes.Equal(now, first) {
		t.Errorf("build --overwrite kept the old %s", k)
	}
	r.ok("verify", k, "--key", f.pub) // the kit and its .sig replaced together
	names, _ := os.ReadDir(out)
	if len(names) != 2 {
		t.Errorf("build left %v in %s, want the kit and its .sig", names, out)
	}
}

// status --check exits 9 when an active kit has expired and warns about
// stale ones; without --check, status reports them and exits 0.
func TestStatusCheck(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	spec, _ := buildSpec(t, "expiresAt: 2030-01-01T00:00:00Z\nstalenessWindowHours: 720\n")
	out := t.TempDir()
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv)
	root := filepath.Join(t.TempDir(), "site")
	r.now = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	r.ok("install", filepath.Join(out, "app-1.0.0.kit.tar.zst"), "--root", root, "--key", f.pub)
	if res := r.ok("status", "--root", root, "--check"); strings.Contains(res.stderr, "stale") {
		t.Errorf("status --check of a fresh kit warns:\n%s", res.stderr)
	}

	r.now = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	res := r.ok("status", "--root", root, "--check")
	if !strings.Contains(res.stdout, "STALE") || !strings.Contains(res.stderr, "stale kit") {
		t.Errorf("status --check of a stale kit:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
	}

	r.now = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	r.ok("status", "--root", root)
	res = r.run("status", "--root", root, "--check")
	if res.code != errdef.ExitExpired || !strings.Contains(res.stdout, "EXPIRED") || !strings.Contains(res.stderr, "app 1.0.0 (expired 2030-01-01T00:00:00Z)") {
		t.Errorf("status --check of an expired kit: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	res = r.run("status", "--root", root, "--check", "--json")
	if res.code != errdef.ExitExpired {
		t.Errorf("status --check --json: exit %d", res.code)
	}
	checkSchema(t, "output/error.schema.json", res.stdout)
}
