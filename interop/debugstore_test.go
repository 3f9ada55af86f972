//go:build interop

package interop

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/elfgen"
)

// TestDebugStoreOras: a site's debug store (a gcc program's .debug file
// and two generated ones) pushed by `offkit push --root` into the
// distribution registry is pulled whole by `oras pull`, every file at
// <aa>/<rest>.debug byte for byte, and `offkit debug fetch --from oci://`
// gets one file back by its build id.
func TestDebugStoreOras(t *testing.T) {
	dir := t.TempDir()
	id, debug, _ := debugProgram(t, dir)
	syms := filepath.Join(dir, "symbols")
	os.MkdirAll(syms, 0o755)
	files := map[string][]byte{}
	b, _ := os.ReadFile(debug)
	files[id] = b
	os.WriteFile(filepath.Join(syms, "prog.debug"), b, 0o644)
	for i := 0; i < 2; i++ {
		gid := fmt.Sprintf("%040x", 0xabc0+i)
		raw, _ := hex.DecodeString(gid)
		files[gid] = elfgen.Bytes(elfgen.Options{BuildID: raw, Filler: int64(50000 * (i + 1)), Seed: uint64(i)})
		os.WriteFile(filepath.Join(syms, fmt.Sprintf("gen%d.debug", i)), files[gid], 0o644)
	}
	os.WriteFile(filepath.Join(dir, "kit.yaml"), []byte("name: symbols\nversion: 1.0.0\ncreatedAt: 2025-10-20T00:00:00Z\ndebug:\n  - src: symbols\n    kind: debug-file\n"), 0o644)
	keyEnv := cosignEnv(t, dir)
	run(t, dir, keyEnv, "offkit", "key", "generate", "--output-key-prefix", "kit")
	run(t, dir, keyEnv, "offkit", "build", "-f", "kit.yaml", "-o", dir, "--key", "kit.key")
	root := filepath.Join(dir, "site")
	run(t, dir, nil, "offkit", "install", filepath.Join(dir, "symbols-1.0.0.kit.tar.zst"), "--root", root, "--key", "kit.pub")

	addr := distributionRegistry(t, dir)
	env := []string{"DOCKER_CONFIG=" + dir}
	out := run(t, dir, env, "offkit", "push", "--root", root, "--to", addr+"/site1", "--plain-http")
	ref := addr + "/site1/debug-store:latest"
	if !strings.Contains(out, ref) {
		t.Fatalf("offkit push: %s", out)
	}
	pulled := filepath.Join(dir, "pulled")
	run(t, dir, env, "oras", "pull", "--plain-http", "-o", pulled, ref)
	for id, want := range files {
		got, err := os.ReadFile(filepath.Join(pulled, id[:2], id[2:]+".debug"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("oras pull: %s/%s.debug: %d bytes, want %d (%v)", id[:2], id[2:], len(got), len(want), err)
		}
	}
	one := filepath.Join(dir, "one.debug")
	run(t, dir, env, "offkit", "debug", "fetch", id, "-o", one, "--from", "oci://"+ref)
	if got, _ := os.ReadFile(one); !bytes.Equal(got, files[id]) {
		t.Errorf("offkit debug fetch --from oci://: %d bytes, want %d", len(got), len(files[id]))
	}
	// The stripped program's build id, read back from the fetched file.
	if got := run(t, dir, nil, "offkit", "debug", "buildid", one); !strings.HasPrefix(got, id+" ") {
		t.Errorf("fetched file's build id: %s", got)
	}
}
