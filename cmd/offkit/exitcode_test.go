package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
)

// A command line that does not parse is invalid input (11), like any other.
func TestExitBadCommandLine(t *testing.T) {
	r := newRunner(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"key", "bogus"}, `unknown command "bogus" for "offkit key"`},
		{[]string{"completion", "bash", "x"}, `unknown command "x"`},
		{[]string{"verify"}, "verify needs a kit (K.kit.tar.zst) or --root ROOT"},
		{[]string{"verify", "a.kit.tar.zst", "b.kit.tar.zst"}, "verify: accepts at most 1 arg(s), received 2"},
		{[]string{"status", "extra", "--root", "x"}, `status: unknown command "extra"`},
		{[]string{"verify", "--bogus", "a.kit.tar.zst"}, "verify: unknown flag: --bogus"},
		{[]string{"install", "a.kit.tar.zst"}, "--root is required"},
	} {
		r.fails(errdef.ExitInvalid, c.args, c.want)
	}
	// --json before a flag that does not parse still gets the error object.
	res := r.run("--json", "verify", "--bogus")
	if res.code != errdef.ExitInvalid || !strings.Contains(res.stdout, `"exitCode":11`) {
		t.Errorf("--json verify --bogus: exit %d, stdout %q", res.code, res.stdout)
	}
	// No arguments at all is help, not an error.
	if res := r.run(); res.code != 0 || !strings.Contains(res.stdout, "Available Commands") {
		t.Errorf("offkit: exit %d, stdout %q", res.code, res.stdout)
	}
}

func TestExitNotFound(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	missing := filepath.Join(t.TempDir(), "missing.kit.tar.zst")
	r.fails(errdef.ExitNotFound, []string{"verify", missing, "--key", f.pub}, missing)
	r.fails(errdef.ExitNotFound, []string{"inspect", missing}, missing)
	k := f.kit(t, "app", "1.0.0")
	r.fails(errdef.ExitNotFound, []string{"verify", k, "--key", missing + ".pub"}, missing+".pub")
	r.fails(errdef.ExitNotFound, []string{"status", "--root", missing}, missing)
}

// offkit serve refuses a root that is not a site (a mistyped --root)
// instead of serving nothing; an installed site starts.
func TestServeNotASite(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "notes.txt"), "not a site\n")
	r.fails(errdef.ExitNotFound, []string{"serve", "--root", empty, "--listen", "127.0.0.1:0"}, "not a site")
	r.fails(errdef.ExitNotFound, []string{"serve", "--root", filepath.Join(empty, "missing"), "--listen", "127.0.0.1:0"}, "missing")

	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", f.kit(t, "app", "1.0.0"), "--root", root, "--key", f.pub)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r.ctx = ctx
	// It serves until stopped, then shuts down cleanly.
	res := r.run("serve", "--root", root, "--listen", "127.0.0.1:0")
	if res.code != 0 || !strings.Contains(res.stderr, "msg=serving") {
		t.Errorf("serve of an installed site: exit %d, stderr:\n%s", res.code, res.stderr)
	}
}

// A kit whose content does not match its signed manifest is 2.
func TestExitMismatch(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	k := mismatchKit(t, f.key, 0)
	r.fails(errdef.ExitMismatch, []string{"verify", k, "--key", f.pub}, "files/a/b.yaml")
	root := filepath.Join(t.TempDir(), "site")
	r.fails(errdef.ExitMismatch, []string{"install", k, "--root", root, "--key", f.pub}, "files/a/b.yaml")
	if _, err := os.Stat(filepath.Join(root, "current")); err == nil {
		t.Errorf("a refused install activated a generation")
	}
}

// mismatchKit crafts a kit signed by key whose entry files/a/b.yaml differs
// from its manifest digest (same size); with pad > 0, pad bytes of
// incompressible content come before it (files/a/a.bin) and after it
// (files/a/c.bin).
func mismatchKit(t *testing.T, key *kittest.Key, pad int) string {
	t.Helper()
	random := func() []byte {
		b := make([]byte, pad)
		rand.Read(b)
		return b
	}
	bad := kittest.File("files/a/b.yaml", []byte("replicas: 3\n"))
	content := []kittest.Entry{bad}
	if pad > 0 {
		content = []kittest.Entry{kittest.File("files/a/a.bin", random()), bad, kittest.File("files/a/c.bin", random())}
	}
	m := kittest.ManifestFor(content)
	for i := range content {
		if content[i].Header.Name == bad.Header.Name {
			content[i] = kittest.File(bad.Header.Name, []byte("replicas: 9\n"))
		}
	}
	c := &kittest.Craft{Content: content, Manifest: m, Key: key}
	return c.Write(t, filepath.Join(t.TempDir(), "bad-1.0.0.kit.tar.zst"))
}

// A kit damaged in transit (a frame that fails its zstd checksum) is 2 too,
// naming the entry the frame carries; verify and install alike.
func TestExitDamagedFrame(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	res := kittest.Build(t, f.key, "app", "1.0.0", 1<<20, t.TempDir())
	os.Remove(res.SignaturePath) // else the file signature fails first (5)
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := seekable.ReadSeekTable(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(frames) < 4 {
		t.Fatalf("want a kit of several frames: %d frames, %v", len(frames), err)
	}
	fr := frames[2] // its last byte belongs to its content checksum
	b[fr.Offset+fr.CompressedSize-1] ^= 0x55
	if err := os.WriteFile(res.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r.fails(errdef.ExitMismatch, []string{"verify", res.Path, "--key", f.pub}, "frame 2 is damaged", `"files/app/big.bin"`)
	r.fails(errdef.ExitMismatch, []string{"install", res.Path, "--root", filepath.Join(t.TempDir(), "site"), "--key", f.pub}, `"files/app/big.bin"`)
}

func TestExitSignature(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	k := f.kit(t, "app", "1.0.0")
	r.fails(errdef.ExitSignature, []string{"verify", k, "--key", otherKey(t)}, "signature")
	r.fails(errdef.ExitSignature, []string{"verify", k}, "no trusted key")
	r.fails(errdef.ExitSignature, []string{"install", k, "--root", filepath.Join(t.TempDir(), "site"), "--key", otherKey(t)}, "signature")
}

func TestExitNotNewer(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	root := filepath.Join(t.TempDir(), "site")
	r.ok("install", f.kit(t, "app", "1.0.1"), "--root", root, "--key", f.pub)
	r.fails(errdef.ExitNotNewer, []string{"install", f.kit(t, "app", "1.0.0"), "--root", root, "--key", f.pub}, "1.0.0")
}

// A kit built with expiresAt verifies until then and is 9 after.
func TestExitExpired(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "rules", "app.rules.yaml"), kittest.Rules)
	spec := writeFile(t, filepath.Join(src, "kit.yaml"), `name: app
version: 1.0.0
createdAt: 2025-01-01T00:00:00Z
expiresAt: 2030-01-01T00:00:00Z
rules:
  - src: rules/app.rules.yaml
`)
	out := t.TempDir()
	r.ok("build", "-f", spec, "-o", out, "--key", f.priv)
	k := filepath.Join(out, "app-1.0.0.kit.tar.zst")
	r.now = time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)
	r.ok("verify", k, "--key", f.pub)
	r.now = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	r.fails(errdef.ExitExpired, []string{"verify", k, "--key", f.pub}, "expired")
	r.fails(errdef.ExitExpired, []string{"install", k, "--root", filepath.Join(t.TempDir(), "site"), "--key", f.pub}, "expired")
}

func TestExitInvalid(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	dir := t.TempDir()
	r.fails(errdef.ExitInvalid, []string{"verify", dir, "--key", f.pub}, dir)
	bad := writeFile(t, filepath.Join(dir, "kit.yaml"), "name: app\nversion: one\n")
	r.fails(errdef.ExitInvalid, []string{"build", "-f", bad, "-o", dir}, "version")
}

// A registry that answers plain http where https was expected is 11, with
// the hint to use --plain-http.
func TestPushPlainHTTP(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	k := f.kit(t, "app", "1.0.0")
	r.fails(errdef.ExitInvalid, []string{"push", k, "--key", f.pub, "--to", host + "/ns"}, "speaks plain http", "--plain-http")
}

// Reading that fails in the file system (here EIO: /proc/self/mem at offset
// 0, which no process maps) is 12, not "not found".
func TestExitIO(t *testing.T) {
	const eio = "/proc/self/mem"
	if _, err := os.ReadFile(eio); err == nil {
		t.Skip("reading /proc/self/mem does not fail here")
	}
	r, f := newRunner(t), newFixture(t)
	k := f.kit(t, "app", "1.0.0")
	r.fails(errdef.ExitIO, []string{"build", "-f", eio, "-o", t.TempDir()}, eio, "input/output error")
	r.fails(errdef.ExitIO, []string{"verify", k, "--key", eio}, eio, "input/output error")
	root := filepath.Join(t.TempDir(), "site")
	r.fails(errdef.ExitIO, []string{"install", k, "--root", root, "--key", eio}, eio)
	if _, err := os.Stat(root); err == nil {
		t.Errorf("a failed install left %s", root)
	}
}

// Writing where the file system refuses it (sysfs refuses new folders even
// to root: EPERM) is 12 too.
func TestExitIOWrite(t *testing.T) {
	const denied = "/sys/offkit-test"
	err := os.Mkdir(denied, 0o755)
	if err == nil {
		os.Remove(denied)
	}
	if errdef.ExitCode(err) != errdef.ExitIO {
		t.Skipf("creating %s: %v, not a permission error here", denied, err)
	}
	r, f := newRunner(t), newFixture(t)
	spec, _ := buildSpec(t, "")
	r.fails(errdef.ExitIO, []string{"build", "-f", spec, "-o", denied, "--key", f.priv}, denied)
	r.fails(errdef.ExitIO, []string{"install", f.kit(t, "app", "1.0.0"), "--root", denied, "--key", f.pub}, denied)
}

// A cancelled command exits 130 (SIGINT), or 143 when SIGTERM cancelled it.
func TestExitCancelled(t *testing.T) {
	r, f := newRunner(t), newFixture(t)
	k := f.kit(t, "app", "1.0.0")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(context.Canceled)
	r.ctx = ctx
	r.fails(errdef.ExitCancelled, []string{"verify", k, "--key", f.pub}, "canceled")
	ctx, cancel = context.WithCancelCause(context.Background())
	cancel(errTerminated)
	r.ctx = ctx
	r.fails(errdef.ExitTerminated, []string{"verify", k, "--key", f.pub}, "canceled")
	r.fails(errdef.ExitTerminated, []string{"install", k, "--root", filepath.Join(t.TempDir(), "site"), "--key", f.pub})
}
