//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerd is a private containerd daemon of one test: its own root,
// state and socket under a temporary folder, stopped when the test ends.
type containerd struct {
	addr string
}

// startContainerd starts containerd as a child process; if it cannot run
// here, the test is unavailable (it fails under `make interop`).
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	bin := optionalTool(t, "containerd")
	optionalTool(t, "ctr")
	// A short folder: the socket path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &containerd{addr: filepath.Join(dir, "c.sock")}
	// Only what a pull needs: no CRI, no snapshotters that need a
	// particular file system. The native snapshotter copies, so it works on
	// any file system, nested overlay included.
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.addr, c.addr+".ttrpc")
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644)
	var log bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		unavailable(t, "containerd does not start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cancel(); <-exited })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("ctr", "--address", c.addr, "version").CombinedOutput()
		if err == nil {
			return c
		}
		select {
		case werr := <-exited:
			exited <- werr
			unavailable(t, "containerd exited: %v\n%s", werr, log.String())
		default:
		}
		if time.Now().After(deadline) {
			unavailable(t, "containerd not serving after 30s: ctr version: %v\n%s\ncontainerd log:\n%s", err, out, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, ".", nil, "ctr", append([]string{"--address", c.addr}, args...)...)
}

func (c *containerd) ctrFails(t *testing.T, args ...string) {
	t.Helper()
	fails(t, ".", nil, "ctr", append([]string{"--address", c.addr}, args...)...)
}

// imageDigest is the target digest containerd records for the image name.
func (c *containerd) imageDigest(t *testing.T, name string) string {
	t.Helper()
	out := c.ctr(t, "images", "ls")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == name {
			return f[2]
		}
	}
	t.Fatalf("ctr images ls does not list %s:\n%s", name, out)
	return ""
}

// content reads a blob from containerd's content store and checks it
// hashes to its digest.
func (c *containerd) content(t *testing.T, dg string) []byte {
	t.Helper()
	b := []byte(c.ctr(t, "content", "get", dg))
	s := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(s[:]); got != dg {
		t.Fatalf("ctr content get %s: the bytes hash to %s", dg, got)
	}
	return b
}

// TestContainerdPullFromServe: containerd's ctr pulls the example kit's
// two-platform image from `offkit serve` by tag and by digest; containerd
// records the digest the kit pins, holds every manifest, config and layer
// of both platforms, and the unpacked root file system of each platform is
// the example image's.
func TestContainerdPullFromServe(t *testing.T) {
	ctd := startContainerd(t)
	dir := t.TempDir()
	env := cosignEnv(t, dir)
	k := exampleKit(t, dir, env)
	imgs := kitImages(t, k)
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", k, "--root", root, "--key", "cosign.pub")
	addr := startServe(t, root)

	for ref, want := range imgs {
		repoTag := ref[strings.Index(ref, "/")+1:]
		repo := repoTag[:strings.LastIndex(repoTag, ":")]
		byTag := addr + "/" + repoTag
		byDigest := addr + "/" + repo + "@" + want
		ctd.ctr(t, "images", "pull", "--plain-http", "--all-platforms", "--snapshotter", "native", byTag)
		if got := ctd.imageDigest(t, byTag); got != want {
			t.Fatalf("containerd pulled %s as %s, the kit pins %s", byTag, got, want)
		}
		ctd.ctr(t, "images", "pull", "--plain-http", "--platform", "linux/arm64", "--snapshotter", "native", byDigest)
		if got := ctd.imageDigest(t, byDigest); got != want {
			t.Fatalf("containerd pulled %s as %s", byDigest, got)
		}
		if out := ctd.ctr(t, "images", "check"); strings.Count(out, "complete (2/2)") != 2 {
			t.Fatalf("ctr images check: want both names complete (2/2):\n%s", out)
		}

		// Every manifest, config and layer is in containerd's store, with
		// the bytes offkit serves.
		manifests, blobs := walkImage(t, addr, repo, want)
		for _, dg := range append(manifests, blobs...) {
			ctd.content(t, dg)
		}
		var idx struct {
			Manifests []struct {
				Digest   string
				Platform struct{ OS, Architecture string }
			}
		}
		if err := json.Unmarshal(ctd.content(t, want), &idx); err != nil || len(idx.Manifests) != 2 {
			t.Fatalf("the index containerd holds: %v, %d manifests", err, len(idx.Manifests))
		}

		// Each platform's root file system, as containerd unpacked it.
		for _, m := range idx.Manifests {
			plat := m.Platform.OS + "/" + m.Platform.Architecture
			mnt := filepath.Join(dir, "mnt-"+m.Platform.Architecture)
			os.Mkdir(mnt, 0o755)
			ctd.ctr(t, "images", "mount", "--platform", plat, "--snapshotter", "native", byTag, mnt)
			func() {
				defer ctd.ctr(t, "images", "unmount", mnt)
				got, err := os.ReadFile(filepath.Join(mnt, "etc/zastava/platform"))
				if err != nil || string(got) != plat+"\n" {
					t.Fatalf("%s: etc/zastava/platform = %q, %v", plat, got, err)
				}
				src := filepath.Join("..", "examples", "zastava-runtime", "image")
				filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					rel, _ := filepath.Rel(src, p)
					wantB, _ := os.ReadFile(p)
					gotB, err := os.ReadFile(filepath.Join(mnt, rel))
					if err != nil || !bytes.Equal(gotB, wantB) {
						t.Errorf("%s: %s differs from the example image's (%v)", plat, rel, err)
					}
					return nil
				})
			}()
		}

		// A tag and a digest the kit does not have are not pulled.
		ctd.ctrFails(t, "images", "pull", "--plain-http", "--snapshotter", "native", addr+"/"+repo+":no-such-tag")
		ctd.ctrFails(t, "images", "pull", "--plain-http", "--snapshotter", "native", addr+"/"+repo+"@sha256:"+strings.Repeat("0", 64))
	}
}
