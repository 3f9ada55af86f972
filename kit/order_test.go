package kit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// Build takes the listed files' digests either before packing (hashing
// them first) or while packing (content first, then the head): both must
// write the same kit, byte for byte, with the same signatures, and the kit
// must verify.
func TestContentFirstWritesTheSameKit(t *testing.T) {
	key := kittest.NewKey(t)
	files := t.TempDir()
	big := make([]byte, 300<<10) // over a quarter of a frame: starts one
	for i := range big {
		big[i] = byte((i * 7919) >> 5)
	}
	kittest.Files(t, files, map[string]string{
		"rules/a.rules.yaml": kittest.Rules,
		"dash/a.json":        `{"uid": "a", "title": "A"}`,
		"files/big.bin":      string(big),
		"files/empty":        "",
		"files/small.txt":    strings.Repeat("offkit\n", 100),
		"files/z/last.txt":   "last",
	})
	filesSpec := &manifest.Spec{Name: "order", Version: "1.0.0", CreatedAt: &kittest.Created,
		Compression: &manifest.SpecCompress{FrameSize: 256 << 10},
		Rules:       []manifest.FileSource{{Src: "rules"}},
		Dashboards:  []manifest.FileSource{{Src: "dash"}},
		Files:       []manifest.FileSource{{Src: "files"}}}
	imgSpec, imgDir, _, _ := imageSpec(t)
	for _, c := range []struct {
		name string
		spec *manifest.Spec
		dir  string
	}{{"files", filesSpec, files}, {"images and a file", imgSpec, imgDir}} {
		t.Run(c.name, func(t *testing.T) {
			var kits, sigs [][]byte
			for _, first := range []bool{false, true} {
				out := t.TempDir()
				opts := kit.BuildOptions{Dir: c.dir, OutDir: out, Key: key.Private}
				kit.SetContentFirst(&opts, first)
				res, err := kit.Build(context.Background(), c.spec, opts)
				if err != nil {
					t.Fatalf("content first %v: %v", first, err)
				}
				b, _ := os.ReadFile(res.Path)
				s, _ := os.ReadFile(res.SignaturePath)
				kits, sigs = append(kits, b), append(sigs, s)
				if _, err := verify.File(context.Background(), res.Path, verify.Options{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created}); err != nil {
					t.Fatalf("content first %v: verify: %v", first, err)
				}
				// Nothing is left behind beside the kit and its .sig.
				left, _ := filepath.Glob(filepath.Join(out, "*"))
				hidden, _ := filepath.Glob(filepath.Join(out, ".*"))
				if len(left) != 2 || len(hidden) != 0 {
					t.Fatalf("content first %v: out folder holds %v %v", first, left, hidden)
				}
			}
			if len(kits[0]) == 0 || !bytes.Equal(kits[0], kits[1]) || !bytes.Equal(sigs[0], sigs[1]) {
				t.Fatalf("hashing first and content first write different kits (%d and %d bytes)", len(kits[0]), len(kits[1]))
			}
			h, err := kitfile.ReadHeadFrom(bytes.NewReader(kits[1]))
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.Parse(h.ManifestBytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range m.Entries {
				if e.SHA256 == strings.Repeat("0", 64) {
					t.Fatalf("%s: placeholder digest in the manifest", e.Path)
				}
			}
		})
	}
}
