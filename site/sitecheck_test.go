package site_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/site"
)

// checkedSite installs a kit of 120 files and one image, two kits with a
// debug store that share one .build-id file, and two versions of a feed-mirror kit (so the generation
// holds retained exports): what View.Check reads.
func checkedSite(t *testing.T) string {
	t.Helper()
	key := kittest.NewKey(t)
	mirrorKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	root := filepath.Join(t.TempDir(), "site")
	v1, _ := kittest.SignedMirrorKit(t, key, mirrorKey, "feeds", "1.0.0", []string{"20251121T000000Z"}, []string{"20251121T000000Z"})
	v2, _ := kittest.SignedMirrorKit(t, key, mirrorKey, "feeds", "1.0.1", []string{"20251122T000000Z"}, nil)
	files := map[string]string{"app/values.yaml": "replicas: 3\n"}
	for i := range 120 {
		files[fmt.Sprintf("many/f%03d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	app := kittest.SiteKit(t, key, "app", "1.0.0", files, "stellaops/app:1").Path
	dbg := kittest.DebugFilesKit(t, key, "dbg", "1.0.0", map[string][]byte{ownA: kittest.DebugELF(t, ownA, 1000)}).Path
	dbg2 := kittest.DebugFilesKit(t, key, "dbg2", "1.0.0", map[string][]byte{ownA: kittest.DebugELF(t, ownA, 1000)}).Path
	for _, k := range []string{v1, v2, app, dbg, dbg2} {
		if _, err := install(t, root, k, key, nil); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// An intact site passes: every kit, every file, blob and retained mirror
// file counted (a file two kits share once), and Check writes nothing.
func TestCheckSite(t *testing.T) {
	root := checkedSite(t)
	before := snapshot(t, root)
	c, err := site.NewView(root).Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil || !c.OK() {
		t.Fatalf("intact site: %v %+v", err, c.Problems)
	}
	if c.Generation != 5 || len(c.Kits) != 4 {
		t.Fatalf("generation %d, kits %+v", c.Generation, c.Kits)
	}
	var blobs, files int
	for _, k := range c.Kits {
		blobs += k.Blobs
		files += k.Files
		if !k.OK {
			t.Errorf("kit %+v not ok", k)
		}
	}
	// app: 121 files and the image index; feeds: its active exports; dbg:
	// the .debug file and the debug manifest; dbg2: the same .debug file,
	// read once, and its own debug manifest.
	if blobs < 3 || files < 121+1+2+2 || c.MirrorRetained == 0 || c.MirrorExports != 3 || c.Files != files+blobs+c.MirrorRetained-1 || c.Bytes <= 0 {
		t.Errorf("counts: %+v", c)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("Check wrote into the site:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// writable makes the generation file p (0444, hard-linked) writable.
func writable(t *testing.T, p string) {
	t.Helper()
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSiteFindsDamage(t *testing.T) {
	template := checkedSite(t)
	cur, err := site.NewView(template).Generation()
	if err != nil {
		t.Fatal(err)
	}
	gdir, _ := filepath.Rel(template, cur) // generations/4
	blob := func(root string) string {
		m, _ := filepath.Glob(filepath.Join(root, "store/oci/blobs/sha256/*"))
		// The biggest blob: the image's layer.
		var best string
		var size int64 = -1
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.Size() > size {
				best, size = p, fi.Size()
			}
		}
		return best
	}
	c1 := "mirror/concelier/20251121T000000Z/mirror/primary/bundle.json"
	for name, c := range map[string]struct {
		damage func(t *testing.T, root string) string // the path named
		got    string
		count  int
	}{
		"tree file, one byte flipped": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, "files/app/values.yaml")
			writable(t, p)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("R"), 0)
			f.Close()
			return gdir + "/files/app/values.yaml"
		}, "12 bytes sha256", 1},
		"tree file, longer": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, "files/many/f007.txt")
			writable(t, p)
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("more bytes")
			f.Close()
			return gdir + "/files/many/f007.txt"
		}, "over 7 bytes", 1},
		"tree file deleted": {func(t *testing.T, root string) string {
			os.Remove(filepath.Join(root, gdir, "files/many/f042.txt"))
			return gdir + "/files/many/f042.txt"
		}, "missing", 1},
		"tree file replaced by a link to the same bytes": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, "files/app/values.yaml")
			outside := filepath.Join(t.TempDir(), "values.yaml")
			os.WriteFile(outside, []byte("replicas: 3\n"), 0o644)
			os.Remove(p)
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
			return gdir + "/files/app/values.yaml"
		}, "a symlink, not a regular file", 1},
		"store blob truncated": {func(t *testing.T, root string) string {
			p := blob(root)
			writable(t, p)
			if err := os.Truncate(p, 10); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, p)
			return rel
		}, "10 bytes sha256", 1},
		"store blob is a link": {func(t *testing.T, root string) string {
			p := blob(root)
			b, _ := os.ReadFile(p)
			outside := filepath.Join(t.TempDir(), "blob")
			os.WriteFile(outside, b, 0o644)
			os.Remove(p)
			os.Symlink(outside, p)
			rel, _ := filepath.Rel(root, p)
			return rel
		}, "a symlink, not a regular file", 1},
		"debug manifest changed": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, site.DebugManifestPath("dbg"))
			b, _ := os.ReadFile(p)
			replace(t, p, bytes.Replace(b, []byte("{"), []byte("["), 1))
			return gdir + "/" + site.DebugManifestPath("dbg")
		}, "bytes sha256", 1},
		"retained mirror file changed": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, c1)
			b, _ := os.ReadFile(p)
			replace(t, p, bytes.Replace(b, []byte("CVE-2025-0001"), []byte("CVE-2025-0002"), 1))
			return gdir + "/" + c1
		}, "bytes sha256", 1},
		"a .build-id file two kits share, changed: one problem": {func(t *testing.T, root string) string {
			p := filepath.Join(root, gdir, "debug/.build-id", ownA[:2], ownA[2:]+".debug")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			replace(t, p, b)
			return gdir + "/debug/.build-id/" + ownA[:2] + "/" + ownA[2:] + ".debug"
		}, "bytes sha256", 1},
		"120 files deleted: 100 named, all counted": {func(t *testing.T, root string) string {
			if err := os.RemoveAll(filepath.Join(root, gdir, "files/many")); err != nil {
				t.Fatal(err)
			}
			return gdir + "/files/many/f000.txt"
		}, "missing", 120},
	} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "site")
			if out, err := exec.Command("cp", "-a", template, root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			named := c.damage(t, root)
			chk, err := site.NewView(root).Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			err = chk.Err()
			if !errors.Is(err, errdef.ErrDigestMismatch) || chk.OK() || chk.Mismatches != c.count {
				t.Fatalf("Err %v, %d mismatches, want %d: %+v", err, chk.Mismatches, c.count, chk.Problems)
			}
			if want := min(c.count, site.MaxSiteProblems); len(chk.Problems) != want {
				t.Errorf("%d problems named, want %d", len(chk.Problems), want)
			}
			p := chk.Problems[0]
			var bad []string
			for _, k := range chk.Kits {
				if !k.OK {
					bad = append(bad, k.Name)
				}
			}
			if strings.Contains(name, "share") && strings.Join(bad, ",") != "dbg,dbg2" || (p.Kit == "") != (len(bad) == 0) {
				t.Errorf("kits that failed: %v (problem of kit %q)", bad, p.Kit)
			}
			if p.Path != named || !strings.Contains(p.Got, c.got) || p.Want == "" || !strings.Contains(err.Error(), named) {
				t.Errorf("problem %+v, want path %s got %q; error: %v", p, named, c.got, err)
			}
		})
	}
}

// Nothing installed: ErrNotFound, for a root that is empty or absent.
func TestCheckSiteNothingInstalled(t *testing.T) {
	for _, root := range []string{t.TempDir(), filepath.Join(t.TempDir(), "absent")} {
		_, err := site.NewView(root).Check(context.Background())
		if !errors.Is(err, errdef.ErrNotFound) {
			t.Errorf("%s: %v, want not found", root, err)
		}
	}
}
