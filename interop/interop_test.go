//go:build interop

// Package interop checks offkit against the stock tools an operator uses:
// the cosign CLI, tar and zstd. It runs in `make interop`, which installs
// the pinned tools into ./bin first; a missing tool fails the test.
package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func tool(t *testing.T, name string) string {
	t.Helper()
	if name == "offkit" {
		if p := os.Getenv("OFFKIT"); p != "" {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not on PATH: run scripts/install-interop-tools.sh", name)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fails(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("%s %s succeeded, want failure\n%s", name, strings.Join(args, " "), out)
	}
}

// cosignEnv keeps the cosign CLI offline: no TUF, no Rekor.
func cosignEnv(t *testing.T, dir string) []string {
	rekor := filepath.Join(dir, "rekor.pub")
	os.WriteFile(rekor, []byte("unused"), 0o644)
	return []string{"COSIGN_PASSWORD=interop", "COSIGN_YES=true", "SIGSTORE_REKOR_PUBLIC_KEY=" + rekor, "TUF_ROOT=" + filepath.Join(dir, "tuf")}
}

func writeSpec(t *testing.T, dir string) string {
	t.Helper()
	files := map[string]string{
		"kit.yaml":    "name: interop\nversion: 1.0.0\ncreatedAt: 2025-10-20T00:00:00Z\nrules:\n  - src: r.yaml\nfiles:\n  - src: values.yaml\n",
		"r.yaml":      "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up == 0\n",
		"values.yaml": "replicas: 3\n",
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
	}
	return filepath.Join(dir, "kit.yaml")
}

// TestCosignVerifiesOurSignatures: stock cosign accepts both signatures of a
// kit signed with an offkit key and with a cosign-generated key.
func TestCosignVerifiesOurSignatures(t *testing.T) {
	for _, gen := range []string{"offkit", "cosign"} {
		t.Run(gen, func(t *testing.T) {
			dir := t.TempDir()
			env := cosignEnv(t, dir)
			if gen == "offkit" {
				run(t, dir, env, "offkit", "key", "generate", "--output-key-prefix", "cosign")
			} else {
				run(t, dir, env, "cosign", "generate-key-pair")
			}
			spec := writeSpec(t, dir)
			run(t, dir, env, "offkit", "build", "-f", spec, "-o", dir, "--key", "cosign.key")
			k := filepath.Join(dir, "interop-1.0.0.kit.tar.zst")
			run(t, dir, env, "cosign", "verify-blob", "--key", "cosign.pub", "--signature", k+".sig", "--insecure-ignore-tlog=true", k)
			// The manifest's signature, taken out with stock tar and zstd.
			run(t, dir, nil, "tar", "--zstd", "-xf", k, "offkit/manifest.json", "offkit/manifest.json.sig")
			run(t, dir, env, "cosign", "verify-blob", "--key", "cosign.pub", "--signature", "offkit/manifest.json.sig", "--insecure-ignore-tlog=true", "offkit/manifest.json")
			// And the whole kit unpacks with stock tools, SHA256SUMS checks out.
			ex := filepath.Join(dir, "x")
			os.Mkdir(ex, 0o755)
			run(t, ex, nil, "tar", "--zstd", "-xf", k)
			run(t, ex, nil, "sha256sum", "-c", "--quiet", "SHA256SUMS")
			// A tampered kit is refused by cosign too.
			b, _ := os.ReadFile(k)
			b[len(b)/2] ^= 1
			os.WriteFile(k, b, 0o644)
			fails(t, dir, env, "cosign", "verify-blob", "--key", "cosign.pub", "--signature", k+".sig", "--insecure-ignore-tlog=true", k)
		})
	}
}

// TestOffkitVerifiesCosignSignature: a .sig made by `cosign sign-blob` over a
// kit is accepted by offkit verify.
func TestOffkitVerifiesCosignSignature(t *testing.T) {
	dir := t.TempDir()
	env := cosignEnv(t, dir)
	run(t, dir, env, "cosign", "generate-key-pair")
	spec := writeSpec(t, dir)
	run(t, dir, env, "offkit", "build", "-f", spec, "-o", dir, "--key", "cosign.key")
	k := filepath.Join(dir, "interop-1.0.0.kit.tar.zst")
	os.Remove(k + ".sig")
	run(t, dir, env, "cosign", "sign-blob", "--key", "cosign.key", "--tlog-upload=false", "--output-signature", k+".sig", k)
	out := run(t, dir, nil, "offkit", "verify", k, "--key", "cosign.pub")
	if !strings.Contains(out, "file sig  verified") {
		t.Fatalf("offkit verify did not check the cosign signature:\n%s", out)
	}
}
