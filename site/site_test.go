package site_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

func install(t testing.TB, root, kitPath string, key *kittest.Key, mod func(*site.InstallOptions)) (*site.InstallResult, error) {
	t.Helper()
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}
	if mod != nil {
		mod(&o)
	}
	return s.Install(context.Background(), kitPath, o)
}

func state(t *testing.T, root string) *site.State {
	t.Helper()
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// snapshot lists every file under root with its content hash, for "the site
// is untouched" checks.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".lock" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+l)
			return nil
		}
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			lines = append(lines, rel+" "+hex.EncodeToString(s[:8]))
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkConsistent asserts what an operator relies on: state.json agrees
// with current, and every file of every active kit is there, intact.
func checkConsistent(t *testing.T, root string) {
	t.Helper()
	st := state(t, root)
	if st.Generation == 0 {
		if _, err := os.Lstat(filepath.Join(root, "current")); err == nil {
			t.Fatal("generation 0 but current exists")
		}
		return
	}
	target, err := os.Readlink(filepath.Join(root, "current"))
	if err != nil || filepath.Base(target) != itoa(st.Generation) {
		t.Fatalf("current -> %q, state says generation %d", target, st.Generation)
	}
	for _, k := range st.Kits {
		b, err := os.ReadFile(filepath.Join(root, "current", ".offkit", "kits", k.Name, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != k.Version {
			t.Fatalf("kit %s: state says %s, generation holds %s", k.Name, k.Version, m.Version)
		}
		for _, e := range m.Entries {
			var p string
			if hexd, ok := strings.CutPrefix(e.Path, "images/blobs/sha256/"); ok {
				p = filepath.Join(root, "store/oci/blobs/sha256", hexd)
			} else if strings.HasPrefix(e.Path, "images/") {
				continue
			} else if e.Path == "debug/debug-manifest.json" {
				p = filepath.Join(root, "current", filepath.FromSlash(site.DebugManifestPath(k.Name)))
			} else {
				p = filepath.Join(root, "current", e.Path)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("kit %s: %v", k.Name, err)
			}
			s := sha256.Sum256(b)
			if hex.EncodeToString(s[:]) != e.SHA256 {
				t.Fatalf("kit %s: %s corrupt", k.Name, e.Path)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestInstallUpgradeRollback(t *testing.T) {
	key := kittest.NewKey(t)
	out := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	v0 := kittest.Build(t, key, "zastava-runtime", "1.4.0", 100<<10, out)
	v1 := kittest.Build(t, key, "zastava-runtime", "1.4.1", 100<<10, out)
	v2 := kittest.Build(t, key, "zastava-runtime", "1.4.2", 200<<10, out)
	other := kittest.Build(t, key, "concelier", "2.0.0", 1000, out)

	res, err := install(t, root, v1.Path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 1 || res.Version != "1.4.1" {
		t.Fatalf("%+v", res)
	}
	if _, err := install(t, root, other.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	if res, err = install(t, root, v2.Path, key, nil); err != nil || res.Generation != 3 || res.Previous != "1.4.1" {
		t.Fatalf("%+v %v", res, err)
	}
	checkConsistent(t, root)
	st := state(t, root)
	if len(st.Kits) != 2 || st.HighWater["zastava-runtime"] != "1.4.2" {
		t.Fatalf("%+v", st)
	}
	// The same kit again: a no-op.
	before := snapshot(t, root)
	if res, err = install(t, root, v2.Path, key, nil); err != nil || !res.AlreadyActive {
		t.Fatalf("reinstall: %+v %v", res, err)
	}
	if snapshot(t, root) != before {
		t.Fatal("re-installing the active kit changed the site")
	}
	// An older version: refused with 8, site untouched.
	_, err = install(t, root, v1.Path, key, nil)
	if errdef.ExitCode(err) != errdef.ExitNotNewer {
		t.Fatalf("downgrade: %v", err)
	}
	if snapshot(t, root) != before {
		t.Fatal("refused downgrade changed the site")
	}
	// Rollback to generation 2: zastava 1.4.1 and concelier.
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	rst, err := s.Rollback(site.RollbackOptions{})
	s.Close()
	if err != nil || rst.Generation != 2 {
		t.Fatalf("rollback: %+v %v", rst, err)
	}
	checkConsistent(t, root)
	if b, _ := os.ReadFile(filepath.Join(root, "current/files/concelier/values.yaml")); string(b) != "replicas: 3\n" {
		t.Fatal("concelier's files missing after rollback")
	}
	// Forced activation of the older version is recorded with its reason.
	if _, err = install(t, root, v0.Path, key, nil); errdef.ExitCode(err) != errdef.ExitNotNewer {
		t.Fatalf("older than the high-water mark after rollback: %v", err)
	}
	res, err = install(t, root, v0.Path, key, func(o *site.InstallOptions) { o.Force, o.Reason = true, "CVE-2025-0001 regression in 1.4.1" })
	if err != nil || !res.Forced {
		t.Fatalf("forced: %+v %v", res, err)
	}
	audit, _ := os.ReadFile(filepath.Join(root, "audit.log"))
	if !strings.Contains(string(audit), "CVE-2025-0001 regression") || !strings.Contains(string(audit), `"event":"forced-activation"`) {
		t.Fatalf("audit.log: %s", audit)
	}
	checkConsistent(t, root)
}

func TestRefusals(t *testing.T) {
	key, stranger := kittest.NewKey(t), kittest.NewKey(t)
	out := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	good := kittest.Build(t, key, "a", "1.0.0", 1000, out)
	if _, err := install(t, root, good.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)

	// Expired.
	m := kittest.ManifestFor([]kittest.Entry{kittest.File("files/x", []byte("x"))})
	m.Name, m.Version = "b", "1.0.0"
	exp := kittest.Created.Add(time.Minute)
	m.ExpiresAt = &exp
	expired := (&kittest.Craft{Content: []kittest.Entry{kittest.File("files/x", []byte("x"))}, Manifest: m, Key: key}).Write(t, filepath.Join(out, "exp.kit.tar.zst"))
	if _, err := install(t, root, expired, key, nil); errdef.ExitCode(err) != errdef.ExitExpired {
		t.Fatalf("expired: %v", err)
	}
	// Two kits claiming one path.
	clash := kittest.ManifestFor([]kittest.Entry{kittest.File("files/a/values.yaml", []byte("x"))})
	clash.Name = "c"
	clashKit := (&kittest.Craft{Content: []kittest.Entry{kittest.File("files/a/values.yaml", []byte("x"))}, Manifest: clash, Key: key}).Write(t, filepath.Join(out, "clash.kit.tar.zst"))
	if _, err := install(t, root, clashKit, key, nil); errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "already installed by kit a") {
		t.Fatalf("clash: %v", err)
	}
	// Dry run of a good kit writes nothing.
	next := kittest.Build(t, key, "a", "1.0.1", 1000, out)
	if res, err := install(t, root, next.Path, key, func(o *site.InstallOptions) { o.DryRun = true }); err != nil || !res.DryRun {
		t.Fatalf("dry run: %v", err)
	}
	if now := snapshot(t, root); now != before {
		q, _ := filepath.Glob(filepath.Join(root, "quarantine/*/reason.json"))
		for _, f := range q {
			b, _ := os.ReadFile(f)
			t.Log(string(b))
		}
		t.Fatalf("refused or dry-run installs changed the site:\n%s\n---\n%s", before, now)
	}
	// A corrupt kit and an untrusted one are quarantined, nothing else changes.
	// The corruption is a flipped bit of the first frame's checksum, which
	// every decode checks: a bit flipped at a place that depends on the
	// kit's (random) key, such as the middle of the file, can land in
	// zstd's redundant bits and leave the decoded kit identical, which
	// verify rightly accepts when no K.sig is beside the kit (docs/kit-format.md).
	b, _ := os.ReadFile(next.Path)
	frames, err := seekable.ReadSeekTable(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	b[frames[0].CompressedSize-1] ^= 1
	bad := filepath.Join(out, "bad.kit.tar.zst")
	os.WriteFile(bad, b, 0o644)
	if _, err := install(t, root, bad, key, nil); err == nil {
		t.Fatal("corrupt kit installed")
	}
	if _, err := install(t, root, next.Path, stranger, nil); errdef.ExitCode(err) != errdef.ExitSignature {
		t.Fatalf("untrusted: %v", err)
	}
	s, _ := site.Open(root, false)
	q, _ := s.Quarantined()
	s.Close()
	codes := map[int]bool{}
	for _, r := range q {
		codes[r.ExitCode] = r.SHA256 != "" && r.Reason != ""
	}
	// The damaged frame is 11 today, 2 ("damaged in transit") once that lands.
	if len(q) != 2 || !codes[errdef.ExitSignature] || !(codes[errdef.ExitInvalid] || codes[errdef.ExitMismatch]) {
		t.Fatalf("quarantine: %+v", q)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatal("the operator's kit file was moved")
	}
	after := snapshot(t, root)
	var changed []string
	for _, l := range strings.Split(after, "\n") {
		if !strings.Contains(before, l) && !strings.HasPrefix(l, "quarantine/") && !strings.HasPrefix(l, "audit.log") {
			changed = append(changed, l)
		}
	}
	if len(changed) > 0 {
		t.Fatalf("failed installs changed the site: %v", changed)
	}
	checkConsistent(t, root)
}

// TestKillDuringInstall kills an install process at random instants; every
// time, the next command must find a consistent site, and an install must
// then succeed.
func TestKillDuringInstall(t *testing.T) {
	if os.Getenv("OFFKIT_TEST_INSTALL_CHILD") != "" {
		childInstall(t)
		return
	}
	key := kittest.NewKey(t)
	keyDir := t.TempDir()
	_, pub := key.WriteKeys(t, keyDir)
	out := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	v1 := kittest.Build(t, key, "a", "1.0.0", 2<<20, out)
	v2 := kittest.Build(t, key, "a", "1.0.1", 12<<20, out)
	if _, err := install(t, root, v1.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	kills := 0
	for i := 0; i < 12; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringInstall$")
		cmd.Env = append(os.Environ(), "OFFKIT_TEST_INSTALL_CHILD=1", "OFFKIT_ROOT="+root, "OFFKIT_KIT="+v2.Path, "OFFKIT_PUB="+pub)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			kills++
		}
		checkConsistent(t, root)
		st := state(t, root)
		if v := st.Kits[0].Version; v != "1.0.0" && v != "1.0.1" {
			t.Fatalf("version %s", v)
		}
		if st.Kits[0].Version == "1.0.1" {
			// Completed before the kill: start again on a new site.
			root = filepath.Join(t.TempDir(), "site")
			if _, err := install(t, root, v1.Path, key, nil); err != nil {
				t.Fatal(err)
			}
		}
		if entries, _ := os.ReadDir(filepath.Join(root, "staging")); len(entries) != 0 {
			t.Fatalf("staging not cleaned: %v", entries)
		}
	}
	if kills == 0 {
		t.Fatal("no install was killed: the test proves nothing")
	}
	if _, err := install(t, root, v2.Path, key, nil); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, root)
}

func childInstall(t *testing.T) {
	b, _ := os.ReadFile(os.Getenv("OFFKIT_PUB"))
	pub, err := sign.LoadPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := site.Open(os.Getenv("OFFKIT_ROOT"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Install(context.Background(), os.Getenv("OFFKIT_KIT"), site.InstallOptions{Keys: []*sign.PublicKey{pub}, Now: kittest.Created.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
}
