package main

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/schemas"
)

// inspect --json of a kit carrying feed mirror exports lists them (the
// manifest's mirror[]) in the documented output schema, and the text
// output names each signed file's signature kind, alg and key id.
func TestInspectMirror(t *testing.T) {
	r := newRunner(t)
	key := kittest.NewKey(t)
	_, pub := key.WriteKeys(t, t.TempDir())
	mk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	k, _ := kittest.SignedMirrorKit(t, key, mk, "feeds", "1.0.0", []string{"20251123T000000Z"}, []string{"20251123T000000Z"})
	in := r.jsonOK(schemas.OutputInspect, "inspect", k, "--key", pub)
	ms, _ := in["mirror"].([]any)
	if len(ms) != 2 {
		t.Fatalf("inspect --json mirror: %v", in["mirror"])
	}
	c := ms[0].(map[string]any)
	files, _ := c["files"].([]any)
	if c["kind"] != "concelier" || c["exportId"] != "20251123T000000Z" || len(files) != 2 {
		t.Errorf("concelier export: %v", c)
	}
	out := r.ok("inspect", k, "--key", pub).stdout
	for _, want := range []string{
		"mirror     concelier 20251123T000000Z [community primary]",
		"  community/bundle.json: cosign EdDSA by mirror-ed25519",
		"  primary/bundle.json: jws EdDSA by mirror-ed25519",
		"mirror     excititor 20251123T000000Z [community]",
	} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}
