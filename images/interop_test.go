//go:build interop

package images_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/images"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// cosign runs the stock cosign CLI (from PATH, as `make interop` sets it,
// or ../bin) offline in dir: no TUF, no Rekor.
func cosign(t *testing.T, dir string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("cosign")
	if err != nil {
		if bin, err = filepath.Abs(filepath.Join("..", "bin", "cosign")); err == nil {
			_, err = os.Stat(bin)
		}
	}
	if err != nil {
		t.Fatalf("cosign not found: run scripts/install-interop-tools.sh")
	}
	rekor := filepath.Join(dir, "rekor.pub")
	if err := os.WriteFile(rekor, []byte("unused"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=interop", "COSIGN_YES=true",
		"SIGSTORE_REKOR_PUBLIC_KEY="+rekor, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCosignSignedImagePasses: an image signed by `cosign sign --key` into
// a loopback registry passes the build-time check with the cosign key's
// public half, and fails with another key.
func TestCosignSignedImagePasses(t *testing.T) {
	host := newRegistry(t)
	dir := t.TempDir()
	cosign(t, dir, "generate-key-pair")
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	cosign(t, filepath.Join(dir, "other"), "generate-key-pair")

	repo := host + "/stellaops/cosigned"
	d := kittest.Push(t, repo+":1", randomImage(t, "linux", "amd64"))
	cosign(t, dir, "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", repo+"@"+d.String())

	pem, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	_, got := collect(t, []manifest.ImageSource{{Ref: repo + ":1", Verify: &manifest.ImageVerify{Key: "cosign.pub"}}}, images.Options{BaseDir: dir})
	if len(got[0].SignedBy) != 1 || got[0].SignedBy[0].KeyID != pub.KeyID() || len(got[0].Signatures) != 1 {
		t.Fatalf("image = %+v", got[0])
	}

	_, err = images.Collect(context.Background(), []manifest.ImageSource{{Ref: repo + ":1", Verify: &manifest.ImageVerify{Key: "other/cosign.pub"}}}, t.TempDir(), images.Options{BaseDir: dir})
	if !errors.Is(err, errdef.ErrSignature) {
		t.Fatalf("other key: err = %v, want ErrSignature", err)
	}
}
