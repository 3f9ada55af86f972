package site_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// TestInstallImageKeys installs a kit whose image was signed at build time:
// with a trusted image key that did not sign it, nothing changes but the
// quarantine; with the right one, it installs, and the carried key lands in
// the store as an ordinary blob.
func TestInstallImageKeys(t *testing.T) {
	key, imageKey, other := kittest.NewKey(t), kittest.NewKey(t), kittest.NewKey(t)
	res := kittest.ImageKit(t, key, imageKey)
	root := filepath.Join(t.TempDir(), "site")

	_, err := install(t, root, res.Path, key, func(o *site.InstallOptions) { o.ImageKeys = []*sign.PublicKey{other.Public} })
	if errdef.ExitCode(err) != errdef.ExitSignature || !strings.Contains(err.Error(), res.Manifest.Images[0].Reference) {
		t.Fatalf("wrong image key: %v", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("a kit refused at a new root left the root behind: %v", err)
	}

	if _, err := install(t, root, res.Path, key, func(o *site.InstallOptions) { o.ImageKeys = []*sign.PublicKey{imageKey.Public} }); err != nil {
		t.Fatal(err)
	}
	if st := state(t, root); st.Generation != 1 || len(st.Kits) != 1 {
		t.Fatalf("state %+v", st)
	}
	keyBlob := filepath.Join(root, "store", "oci", "blobs", "sha256", strings.TrimPrefix(imageKey.Public.KeyID(), "sha256:"))
	if b, err := os.ReadFile(keyBlob); err != nil || string(b) != string(imageKey.Public.DER()) {
		t.Fatalf("key blob in the store: %v", err)
	}
	checkConsistent(t, root)
}
