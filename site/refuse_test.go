package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
)

// tree lists every file and link under root with a hash of its content,
// leaving out the lock file and, unless all, the trace a refused kit leaves
// by design (its quarantine record and audit line).
func tree(t *testing.T, root string, all bool) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == lockFile || (!all && (rel == auditFile || strings.HasPrefix(rel, quarDir+"/"))) {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+l)
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			lines = append(lines, rel+" "+hex.EncodeToString(s[:8]))
		case d.IsDir():
			lines = append(lines, rel+"/")
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func installWith(t *testing.T, root, kitPath string, key *kittest.Key, hook func(string) error) (*InstallResult, error) {
	t.Helper()
	s, err := Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.hook = hook
	return s.Install(context.Background(), kitPath, InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour), Grace: -1})
}

// blobKit crafts a kit holding one image blob, an image index and files.
func blobKit(t *testing.T, key *kittest.Key, name, index string, files map[string]string) string {
	t.Helper()
	blob := []byte("blob of " + name + " " + index)
	sum := sha256.Sum256(blob)
	content := []kittest.Entry{
		kittest.File("images/blobs/sha256/"+hex.EncodeToString(sum[:]), blob),
		kittest.File("images/index.json", []byte(index)),
		kittest.File("images/oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
	}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		content = append(content, kittest.File(p, []byte(files[p])))
	}
	m := kittest.ManifestFor(content)
	m.Name = name
	sort.SliceStable(content, func(i, j int) bool { return content[i].Header.Name < content[j].Header.Name })
	for i := range m.Entries {
		m.Entries[i].Role = kittest.RoleOf(m.Entries[i].Path)
	}
	return (&kittest.Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(t.TempDir(), name+".kit.tar.zst"))
}

// TestRefusedInstallChangesNothing refuses a kit at each stage where an
// install can fail, on a site with a kit installed and on a root that did
// not exist, and compares the site tree before and after. ENOSPC in the
// commit phase is injected with the package's test hook (s.hook) at every
// step before the switch: publishing each blob, after the sync, after the
// generation folder is renamed into place.
func TestRefusedInstallChangesNothing(t *testing.T) {
	key := kittest.NewKey(t)
	a := kittest.SiteKit(t, key, "a", "1.0.0", map[string]string{"a/values.yaml": "a", "dir/x": "x"}, "stellaops/a:1")
	next := kittest.SiteKit(t, key, "a", "1.0.1", map[string]string{"a/values.yaml": "a2", "dir/x": "x"}, "stellaops/a:1", "stellaops/a:extra")

	for _, fresh := range []bool{false, true} {
		setup := func() (root, before string) {
			root = filepath.Join(t.TempDir(), "new", "site")
			if !fresh {
				if _, err := installWith(t, root, a.Path, key, nil); err != nil {
					t.Fatal(err)
				}
			}
			return root, tree(t, root, false)
		}
		unchanged := func(name, root, before string) {
			t.Helper()
			if fresh {
				if _, err := os.Stat(filepath.Dir(root)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s: a refused install at a new root left %s", name, filepath.Dir(root))
				}
			} else if after := tree(t, root, false); after != before {
				t.Fatalf("%s: the refused install changed the site:\n%s\n---\n%s", name, before, after)
			}
		}

		hostile := map[string]string{"image index is not JSON": blobKit(t, key, "b", "not json", map[string]string{"files/b/v": "b"})}
		if !fresh {
			hostile["a file where a folder of kit a is"] = kittest.SiteKit(t, key, "b", "1.0.0", map[string]string{"dir": "b"}, "stellaops/b:1").Path
		}
		for name, k := range hostile {
			root, before := setup()
			if _, err := installWith(t, root, k, key, nil); errdef.ExitCode(err) != errdef.ExitInvalid {
				t.Fatalf("fresh=%v %s: want exit 11, got %v", fresh, name, err)
			}
			unchanged(name, root, before)
		}

		steps := 0
		for i := 1; ; i++ {
			root, before := setup()
			n, failed := 0, ""
			_, err := installWith(t, root, next.Path, key, func(p string) error {
				if p == "switched" || p == "remove" {
					return nil
				}
				if n++; n == i {
					failed = p
					return fmt.Errorf("commit step %s: %w", p, syscall.ENOSPC)
				}
				return nil
			})
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fresh=%v step %d: %v", fresh, i, err)
			}
			unchanged(fmt.Sprintf("ENOSPC at step %d (%s)", i, failed), root, before)
			steps++
		}
		if steps < 4 {
			t.Fatalf("only %d commit steps failed: the test proves little", steps)
		}
	}
}

// TestRecoveryUndoesUncommittedInstall fails an install after its
// generation folder is in place and makes its own undo fail too (as a kill
// would cut it short): the journal stays in staging, and the next command's
// recovery removes the generation and the blobs the install published, and
// nothing else.
func TestRecoveryUndoesUncommittedInstall(t *testing.T) {
	key := kittest.NewKey(t)
	root := filepath.Join(t.TempDir(), "site")
	a := kittest.SiteKit(t, key, "a", "1.0.0", map[string]string{"a/values.yaml": "a"}, "stellaops/a:1")
	next := kittest.SiteKit(t, key, "a", "1.0.1", map[string]string{"a/values.yaml": "a2"}, "stellaops/a:1")
	if _, err := installWith(t, root, a.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root, true)
	errFail := errors.New("injected")
	_, err := installWith(t, root, next.Path, key, func(p string) error {
		if p == "renamed" || p == "remove" {
			return errFail
		}
		return nil
	})
	if !errors.Is(err, errFail) {
		t.Fatal(err)
	}
	if tree(t, root, true) == before {
		t.Fatal("the undo was not cut short: the test proves nothing")
	}
	s, err := Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if after := tree(t, root, true); after != before {
		t.Fatalf("recovery did not undo the failed install:\n%s\n---\n%s", before, after)
	}
}
