package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
	"github.com/offkit/offkit/site"
)

// offkit verify --root: an intact site passes (text, --json against its
// schema, an audit line); each damage, added one after the other, is exit
// 2 naming the file: a flipped byte in a tree file, a truncated store
// blob, a deleted file, a file replaced by a link to the same bytes (not
// followed); nothing installed is exit 1; a kit and --root is exit 11.
func TestSiteVerify(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	root := filepath.Join(t.TempDir(), "site")
	const id = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
	app := kittest.SiteKit(t, f.key, "app", "1.0.0", map[string]string{"app/values.yaml": "replicas: 3\n", "app/other.yaml": "a: b\n"}, "stellaops/app:1").Path
	dbg := kittest.DebugFilesKit(t, f.key, "dbg", "1.0.0", map[string][]byte{id: kittest.DebugELF(t, id, 1000)}).Path
	r.ok("install", app, "--root", root, "--key", f.pub)
	r.ok("install", dbg, "--root", root, "--key", f.pub)

	res := r.ok("verify", "--root", root)
	if !strings.Contains(res.stdout, "site "+root+": generation 2: 2 kits, ") || !strings.Contains(res.stdout, "every sha256 and size matches") {
		t.Errorf("verify --root:\n%s", res.stdout)
	}
	out := r.ok("verify", "--root", root, "--json").stdout
	checkSchema(t, schemas.OutputSiteVerify, out)
	var v siteVerifyOutput
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.OK || v.Generation != 2 || len(v.Kits) != 2 || v.Files < 6 || v.Bytes <= 0 {
		t.Errorf("verify --root --json: %v %s", err, out)
	}
	audit, _ := os.ReadFile(filepath.Join(root, "audit.log"))
	if strings.Count(string(audit), `"event":"site-verify"`) != 2 {
		t.Errorf("audit.log:\n%s", audit)
	}

	gen, err := site.NewView(root).Generation()
	if err != nil {
		t.Fatal(err)
	}
	// A flipped byte in a generation file (0444, hard-linked: chmod first).
	values := filepath.Join(gen, "files/app/values.yaml")
	os.Chmod(values, 0o644)
	fh, err := os.OpenFile(values, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("R"), 0)
	fh.Close()
	r.fails(errdef.ExitMismatch, []string{"verify", "--root", root}, "generations/2/files/app/values.yaml", "1 files do not match")

	// A truncated store blob: named by its digest.
	blobs, _ := filepath.Glob(filepath.Join(root, "store/oci/blobs/sha256/*"))
	if len(blobs) == 0 {
		t.Fatal("no blobs in the store")
	}
	os.Chmod(blobs[0], 0o644)
	if err := os.Truncate(blobs[0], 1); err != nil {
		t.Fatal(err)
	}
	r.fails(errdef.ExitMismatch, []string{"verify", "--root", root}, "sha256:"+filepath.Base(blobs[0]), "2 files do not match")

	// A deleted file.
	if err := os.Remove(filepath.Join(gen, "files/app/other.yaml")); err != nil {
		t.Fatal(err)
	}
	r.fails(errdef.ExitMismatch, []string{"verify", "--root", root}, "generations/2/files/app/other.yaml: missing")

	// The debug manifest replaced by a link to the same bytes: not followed.
	dm := filepath.Join(gen, site.DebugManifestPath("dbg"))
	b, err := os.ReadFile(dm)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "debug-manifest.json")
	os.WriteFile(outside, b, 0o644)
	os.Remove(dm)
	if err := os.Symlink(outside, dm); err != nil {
		t.Fatal(err)
	}
	r.fails(errdef.ExitMismatch, []string{"verify", "--root", root}, "generations/2/.offkit/kits/dbg/debug-manifest.json: a symlink, not a regular file", "4 files do not match")
	audit, _ = os.ReadFile(filepath.Join(root, "audit.log"))
	if !strings.Contains(string(audit), `"mismatches":4`) {
		t.Errorf("audit.log has no failed site-verify line:\n%s", audit)
	}

	// Nothing installed; a kit and --root; neither.
	r.fails(errdef.ExitNotFound, []string{"verify", "--root", t.TempDir()}, "nothing installed")
	r.fails(errdef.ExitNotFound, []string{"verify", "--root", filepath.Join(t.TempDir(), "absent")})
	r.fails(errdef.ExitInvalid, []string{"verify", app, "--root", root}, "not both")
	r.fails(errdef.ExitInvalid, []string{"verify"}, "--root")
	r.fails(errdef.ExitInvalid, []string{"verify", "--root", root, "--key", f.pub}, "no --key")
}
