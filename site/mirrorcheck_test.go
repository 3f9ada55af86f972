package site_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/mirror"
	"github.com/offkit/offkit/site"
)

func mirrorKeys(t testing.TB, keyFile string) *mirror.KeySet {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := mirror.ParseKeys(keyFile, b, "")
	if err != nil {
		t.Fatal(err)
	}
	set, err := mirror.NewKeySet(ks...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// signedSite installs two versions of a kit of signed exports: v1 carries
// concelier C1 and excititor E1, v2 only concelier C2, so the current
// generation holds C2 and, retained, C1 and E1.
func signedSite(t *testing.T) (root string, keys *mirror.KeySet, mirrorKey ed25519.PrivateKey) {
	t.Helper()
	key := kittest.NewKey(t)
	mirrorKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	root = filepath.Join(t.TempDir(), "site")
	v1, keyFile := kittest.SignedMirrorKit(t, key, mirrorKey, "feeds", "1.0.0", []string{"20251121T000000Z"}, []string{"20251121T000000Z"})
	v2, _ := kittest.SignedMirrorKit(t, key, mirrorKey, "feeds", "1.0.1", []string{"20251122T000000Z"}, nil)
	for _, k := range []string{v1, v2} {
		if _, err := install(t, root, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	return root, mirrorKeys(t, keyFile), mirrorKey
}

// replace writes data over the generation file p (a new file: the old one
// is hard-linked into other generations).
func replace(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckMirror(t *testing.T) {
	root, keys, _ := signedSite(t)
	c, err := site.NewView(root).CheckMirror(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range c.Exports {
		got = append(got, e.Kind+" "+e.ExportID+" "+map[bool]string{true: "retained", false: "active"}[e.Retained]+" "+map[bool]string{true: "latest"}[e.Latest])
		if !e.OK || e.Signatures != 2 {
			t.Errorf("%+v", e)
		}
	}
	if strings.Join(got, ", ") != "concelier 20251121T000000Z retained , concelier 20251122T000000Z active latest, excititor 20251121T000000Z retained latest" {
		t.Fatalf("exports: %s", strings.Join(got, ", "))
	}
	if c.Generation != 2 || c.Signatures != 6 || c.Files != 20 || c.Bytes == 0 {
		t.Fatalf("%+v", c)
	}
}

func TestCheckMirrorFindsDamage(t *testing.T) {
	// One site, copied for each case (building and installing signed kits
	// is the slow part).
	template, keys, key := signedSite(t)
	gen := func(root string) string { return filepath.Join(root, "current") }
	c1 := "mirror/concelier/20251121T000000Z/mirror/"
	c2 := "mirror/concelier/20251122T000000Z/mirror/"
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	for name, c := range map[string]struct {
		damage func(t *testing.T, root string, key ed25519.PrivateKey)
		code   int
		path   string
	}{
		"retained bundle, same size": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c1+"primary/bundle.json")
			b, _ := os.ReadFile(p)
			replace(t, p, bytes.Replace(b, []byte("CVE-2025-0001"), []byte("CVE-2025-0002"), 1))
		}, errdef.ExitMismatch, c1 + "primary/bundle.json"},
		"active bundle, longer": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c2+"community/bundle.json")
			b, _ := os.ReadFile(p)
			replace(t, p, append(b, ' '))
		}, errdef.ExitMismatch, c2 + "community/bundle.json"},
		"active index gone": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			os.Remove(filepath.Join(gen(root), c2+"index.json"))
		}, errdef.ExitMismatch, c2 + "index.json"},
		"bundle is a link out of the generation": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c2+"primary/bundle.json")
			b, _ := os.ReadFile(p)
			outside := filepath.Join(t.TempDir(), "bundle.json")
			os.WriteFile(outside, b, 0o644)
			os.Remove(p)
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}, errdef.ExitMismatch, c2 + "primary/bundle.json"},
		// The forger rewrites a retained bundle, signs it with a key of
		// their own and fixes exports.json: only the signature tells.
		"retained bundle re-signed by another key": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c1+"primary/bundle.json")
			b := []byte(`{"advisories":[]}`)
			sig, err := mirrortest.Signer{Kind: mirrortest.JWS, Key: other, KeyID: "mirror-ed25519"}.Sign("bundle.json", b)
			if err != nil {
				t.Fatal(err)
			}
			replace(t, p, b)
			replace(t, p+".jws", sig)
			patchExports(t, root, c1+"primary/bundle.json", c1+"primary/bundle.json.jws")
		}, errdef.ExitSignature, c1 + "primary/bundle.json"},
		"retained excititor signature not parsable": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := "mirror/excititor/20251121T000000Z/mirror/community/consensus.json.jws"
			replace(t, filepath.Join(gen(root), p), []byte("not a signature!"))
			patchExports(t, root, p)
		}, errdef.ExitSignature, "mirror/excititor/20251121T000000Z/mirror/community/consensus.json"},
		"retained cosign signature swapped for a JWS by another key": {func(t *testing.T, root string, key ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c1+"community/bundle.json")
			b, _ := os.ReadFile(p)
			sig, _ := mirrortest.Signer{Kind: mirrortest.Cosign, Key: other}.Sign("bundle.json", b)
			replace(t, p+".jws", sig)
			patchExports(t, root, c1+"community/bundle.json.jws")
		}, errdef.ExitSignature, c1 + "community/bundle.json"},
		"active signature replaced": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c2+"primary/bundle.json")
			b, _ := os.ReadFile(p)
			sig, _ := mirrortest.Signer{Kind: mirrortest.JWS, Key: other, KeyID: "mirror-ed25519"}.Sign("bundle.json", b)
			replace(t, p+".jws", sig)
			patchExports(t, root, c2+"primary/bundle.json.jws")
		}, errdef.ExitMismatch, c2 + "primary/bundle.json.jws"},
		// Opening a named pipe waits for a writer: the check names it (as a
		// listed file that is not a regular file) and does not wait.
		"signature file a named pipe": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), c2+"primary/bundle.json.jws")
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, errdef.ExitMismatch, c2 + "primary/bundle.json.jws"},
		"latest moved back": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			l := filepath.Join(gen(root), "mirror/concelier/latest")
			os.Remove(l)
			if err := os.Symlink("20251121T000000Z", l); err != nil {
				t.Fatal(err)
			}
		}, errdef.ExitMismatch, "mirror/concelier/latest"},
		"latest gone": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			os.Remove(filepath.Join(gen(root), "mirror/excititor/latest"))
		}, errdef.ExitMismatch, "mirror/excititor/latest"},
		// No export of the kind is left, so no link is wanted: a latest
		// that is no link is still something the folder should not hold.
		"latest a file where no export is listed": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), mirror.SiteExportsPath)
			b, _ := os.ReadFile(p)
			x, err := mirror.ParseSiteExports(b)
			if err != nil {
				t.Fatal(err)
			}
			var kept []mirror.SiteExport
			for _, e := range x.Exports {
				if e.Kind != "excititor" {
					kept = append(kept, e)
				} else if err := os.RemoveAll(filepath.Join(gen(root), e.Dir())); err != nil {
					t.Fatal(err)
				}
			}
			x.Exports = kept
			delete(x.Latest, "excititor")
			replace(t, p, x.Encode())
			replace(t, filepath.Join(gen(root), "mirror/excititor/latest"), []byte("20251121T000000Z"))
		}, errdef.ExitMismatch, "mirror/excititor/latest"},
		"a folder no export lists": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			writeTree(t, filepath.Join(gen(root), "mirror/concelier/20251199T000000Z/mirror/index.json"), "{}")
		}, errdef.ExitMismatch, "mirror/concelier/20251199T000000Z"},
		"exports.json disagrees with the kit": {func(t *testing.T, root string, _ ed25519.PrivateKey) {
			p := filepath.Join(gen(root), mirror.SiteExportsPath)
			b, _ := os.ReadFile(p)
			x, err := mirror.ParseSiteExports(b)
			if err != nil {
				t.Fatal(err)
			}
			// The bundle and its record changed together: only the kit's
			// manifest can tell.
			e := x.Export("concelier", "20251122T000000Z")
			for i, f := range e.Files {
				if f.Path == c2+"index.json" {
					data := []byte(`{"schemaVersion":1,"domains":[]}`)
					replace(t, filepath.Join(gen(root), f.Path), data)
					e.Files[i].Size, e.Files[i].SHA256 = int64(len(data)), "4f8c7b0a5d1e9ec8d7c1a0b23e7f3c9f5b6a1d2e3f4a5b6c7d8e9f0a1b2c3d4e"
				}
			}
			replace(t, p, x.Encode())
		}, errdef.ExitMismatch, c2 + "index.json"},
	} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "site")
			if out, err := exec.Command("cp", "-a", template, root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			c.damage(t, root, key)
			res, err := site.NewView(root).CheckMirror(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			err = res.Err()
			if errdef.ExitCode(err) != c.code || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("exit %d: %v", errdef.ExitCode(err), err)
			}
			found := false
			for _, p := range res.Problems {
				found = found || p.Path == c.path
			}
			if !found {
				t.Fatalf("problems %+v do not name %s", res.Problems, c.path)
			}
		})
	}
}

func TestCheckMirrorRefusals(t *testing.T) {
	root, keys, _ := signedSite(t)
	ctx := context.Background()
	if _, err := site.NewView(root).CheckMirror(ctx, nil); errdef.ExitCode(err) != errdef.ExitSignature {
		t.Errorf("no keys: %v", err)
	}
	wrong, _ := mirror.NewKeySet(mirror.Key{ID: "mirror-ed25519", Public: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public()})
	if c, err := site.NewView(root).CheckMirror(ctx, wrong); err != nil || errdef.ExitCode(c.Err()) != errdef.ExitSignature || len(c.Problems) != 6 {
		t.Errorf("another key: %v %+v", err, c)
	}
	if _, err := site.NewView(filepath.Join(t.TempDir(), "none")).CheckMirror(ctx, keys); errdef.ExitCode(err) != errdef.ExitNotFound {
		t.Errorf("nothing installed: %v", err)
	}
	p := filepath.Join(root, "current", mirror.SiteExportsPath)
	replace(t, p, []byte(`{"exports":[{"kind":"concelier","exportId":"..","files":[]}],"latest":{}}`))
	if _, err := site.NewView(root).CheckMirror(ctx, keys); errdef.ExitCode(err) != errdef.ExitInvalid {
		t.Errorf("exports.json invalid: %v", err)
	}
	// A site whose kits carry no exports.
	key := kittest.NewKey(t)
	plain := filepath.Join(t.TempDir(), "site")
	if _, err := install(t, plain, kittest.MirrorSiteKit(t, key, t.TempDir(), "files", "1.0.0", map[string]string{"files/a.txt": "a\n"}), key, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := site.NewView(plain).CheckMirror(ctx, keys); errdef.ExitCode(err) != errdef.ExitNotFound {
		t.Errorf("no exports: %v", err)
	}
}

// patchExports rewrites the records of the files at paths in the current
// generation's exports.json to their bytes on disk.
func patchExports(t *testing.T, root string, paths ...string) {
	t.Helper()
	p := filepath.Join(root, "current", mirror.SiteExportsPath)
	b, _ := os.ReadFile(p)
	x, err := mirror.ParseSiteExports(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range paths {
		data, err := os.ReadFile(filepath.Join(root, "current", fp))
		if err != nil {
			t.Fatal(err)
		}
		e, _, ok := x.File(fp)
		if !ok {
			t.Fatalf("%s not in exports.json", fp)
		}
		for i := range e.Files {
			if e.Files[i].Path == fp {
				sum := sha256.Sum256(data)
				e.Files[i].Size, e.Files[i].SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
			}
		}
	}
	replace(t, p, x.Encode())
}

func writeTree(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
