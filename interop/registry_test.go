//go:build interop

package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const exampleRepo = "stellaops/zastava-observer"

// exampleKit copies examples/zastava-runtime into dir, writes its image
// layout, and builds the signed kit with offkit; it returns the kit's path.
func exampleKit(t *testing.T, dir string, env []string) string {
	t.Helper()
	src := filepath.Join("..", "examples", "zastava-runtime")
	for _, p := range []string{"kit.yaml", "rules", "dashboards", "values", "mirror", "debug"} {
		run(t, ".", nil, "cp", "-r", filepath.Join(src, p), filepath.Join(dir, p))
	}
	mkimage(t, dir)
	run(t, dir, env, "offkit", "key", "generate", "--output-key-prefix", "cosign")
	run(t, dir, env, "offkit", "build", "-f", "kit.yaml", "-o", dir, "--key", "cosign.key")
	return filepath.Join(dir, "zastava-runtime-1.4.2.kit.tar.zst")
}

// kitImages reads the images the kit manifest pins, with `offkit inspect --json`.
func kitImages(t *testing.T, k string) map[string]string {
	t.Helper()
	var out struct {
		Images []struct{ Reference, Digest string }
	}
	b := run(t, ".", nil, "offkit", "inspect", "--json", k)
	if err := json.Unmarshal([]byte(b), &out); err != nil {
		t.Fatalf("offkit inspect --json: %v\n%s", err, b)
	}
	imgs := map[string]string{}
	for _, i := range out.Images {
		imgs[i.Reference] = i.Digest
	}
	if len(imgs) == 0 {
		t.Fatalf("kit %s lists no image:\n%s", k, b)
	}
	return imgs
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `offkit serve` on a free loopback port until the test ends.
func startServe(t *testing.T, root string, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, tool(t, "offkit"), append([]string{"serve", "--root", root, "--listen", addr}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	logf, _ := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	waitReady(t, "http://"+addr+"/readyz")
	return addr
}

// startCommand runs a long-lived tool (a registry) until the test ends.
func startCommand(t *testing.T, readyURL string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	waitReady(t, readyURL)
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 20s", url)
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestPullFromServe: crane, oras and skopeo pull every image of the example
// kit from `offkit serve`, and the digests match the kit manifest.
func TestPullFromServe(t *testing.T) {
	dir := t.TempDir()
	env := cosignEnv(t, dir)
	k := exampleKit(t, dir, env)
	imgs := kitImages(t, k)
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", k, "--root", root, "--key", "cosign.pub")
	addr := startServe(t, root)

	for ref, want := range imgs {
		repoTag := ref[strings.Index(ref, "/")+1:] // the registry host is dropped
		src := addr + "/" + repoTag
		t.Run("crane", func(t *testing.T) {
			if got := strings.TrimSpace(run(t, dir, nil, "crane", "digest", "--insecure", src)); got != want {
				t.Fatalf("crane digest %s = %s, kit says %s", src, got, want)
			}
			out := filepath.Join(dir, "crane-"+want[7:19])
			run(t, dir, nil, "crane", "pull", "--insecure", "--format", "oci", "--platform", "all", src, out)
			var idx struct{ Manifests []struct{ Digest string } }
			b, _ := os.ReadFile(filepath.Join(out, "index.json"))
			json.Unmarshal(b, &idx)
			if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != want {
				t.Fatalf("crane pull wrote %s, want the index %s", b, want)
			}
		})
		t.Run("oras", func(t *testing.T) {
			out := filepath.Join(dir, "oras-"+want[7:19])
			run(t, dir, nil, "oras", "copy", "--from-plain-http", src, "--to-oci-layout", out+":copied")
			desc := run(t, dir, nil, "oras", "manifest", "fetch", "--oci-layout", "--descriptor", out+":copied")
			if !strings.Contains(desc, want) {
				t.Fatalf("oras copied %s, want %s", desc, want)
			}
		})
		t.Run("skopeo", func(t *testing.T) {
			out := filepath.Join(dir, "skopeo-"+want[7:19])
			run(t, dir, nil, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+src, "oci:"+out+":copied")
			raw := filepath.Join(dir, "skopeo-raw-"+want[7:19])
			b := run(t, dir, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+src)
			os.WriteFile(raw, []byte(b), 0o644)
			if got := sha256File(t, raw); got != want {
				t.Fatalf("skopeo inspect --raw: digest %s, want %s", got, want)
			}
			var idx struct{ Manifests []struct{ Digest string } }
			ib, _ := os.ReadFile(filepath.Join(out, "index.json"))
			json.Unmarshal(ib, &idx)
			if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != want {
				t.Fatalf("skopeo copy wrote %s, want %s", ib, want)
			}
		})
	}
}

// TestCosignVerifyAgainstServe: an image signed with the stock cosign CLI in
// a loopback registry is built into a kit, installed, and `cosign verify`
// against `offkit serve` accepts its signature.
func TestCosignVerifyAgainstServe(t *testing.T) {
	dir := t.TempDir()
	env := cosignEnv(t, dir)
	run(t, dir, env, "cosign", "generate-key-pair", "--output-key-prefix", "image")
	mkimage(t, dir)
	srcAddr := freeAddr(t)
	startCommand(t, "http://"+srcAddr+"/v2/", "crane", "registry", "serve", "--address", srcAddr)
	ref := srcAddr + "/" + exampleRepo + ":1.4.2"
	run(t, dir, nil, "crane", "push", "--insecure", "--index", filepath.Join(dir, "_image"), ref)
	dg := strings.TrimSpace(run(t, dir, nil, "crane", "digest", "--insecure", ref))
	run(t, dir, env, "cosign", "sign", "--key", "image.key", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "--yes", ref[:strings.LastIndex(ref, ":")]+"@"+dg)

	spec := fmt.Sprintf("name: signed\nversion: 1.0.0\ncreatedAt: 2026-11-20T00:00:00Z\nimages:\n  - ref: %s\n    plainHTTP: true\n    verify: {key: image.pub}\n", ref)
	os.WriteFile(filepath.Join(dir, "kit.yaml"), []byte(spec), 0o644)
	run(t, dir, env, "offkit", "key", "generate", "--output-key-prefix", "kit")
	run(t, dir, env, "offkit", "build", "-f", "kit.yaml", "-o", dir, "--key", "kit.key")
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", filepath.Join(dir, "signed-1.0.0.kit.tar.zst"), "--root", root, "--key", "kit.pub")
	addr := startServe(t, root)

	served := addr + "/" + exampleRepo + "@" + dg
	run(t, dir, env, "cosign", "verify", "--key", "image.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry", served)
	// Another key does not verify.
	run(t, dir, env, "cosign", "generate-key-pair", "--output-key-prefix", "other")
	fails(t, dir, env, "cosign", "verify", "--key", "other.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry", served)

	// offkit push into a distribution registry: crane and cosign verify
	// against it; a second push uploads nothing.
	dist := distributionRegistry(t, dir)
	run(t, dir, nil, "offkit", "push", "--root", root, "--to", dist+"/site", "--plain-http")
	pushed := dist + "/site/" + exampleRepo
	if got := strings.TrimSpace(run(t, dir, nil, "crane", "digest", "--insecure", pushed+":1.4.2")); got != dg {
		t.Fatalf("crane digest of the pushed image: %s, want %s", got, dg)
	}
	run(t, dir, nil, "crane", "pull", "--insecure", "--format", "oci", "--platform", "all", pushed+":1.4.2", filepath.Join(dir, "pulled"))
	run(t, dir, env, "cosign", "verify", "--key", "image.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry", pushed+"@"+dg)
	var report struct {
		Images []struct{ Copied int }
	}
	out := run(t, dir, nil, "offkit", "push", "--root", root, "--to", dist+"/site", "--plain-http", "--json")
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Images) == 0 {
		t.Fatalf("offkit push --json: %v\n%s", err, out)
	}
	for _, i := range report.Images {
		if i.Copied != 0 {
			t.Fatalf("second push copied %d blobs:\n%s", i.Copied, out)
		}
	}
}

// distributionRegistry starts the pinned distribution registry on loopback
// with filesystem storage under dir and returns its address.
func distributionRegistry(t *testing.T, dir string) string {
	t.Helper()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "distribution.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n", filepath.Join(dir, "distribution"), addr)), 0o644)
	startCommand(t, "http://"+addr+"/v2/", "registry", "serve", cfg)
	return addr
}

// mkimage writes the example kit's image layout into dir/_image.
func mkimage(t *testing.T, dir string) {
	t.Helper()
	run(t, ".", nil, "go", "run", "../examples/zastava-runtime/mkimage", "-o", filepath.Join(dir, "_image"), "-src", "../examples/zastava-runtime/image")
}
