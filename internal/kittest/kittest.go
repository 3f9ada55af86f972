// Package kittest makes keys and kits for tests: well-formed ones through
// kit.Build, and hostile ones entry by entry.
package kittest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/seekable"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// Key is a test key pair.
type Key struct {
	Private    *sign.PrivateKey
	Public     *sign.PublicKey
	PrivatePEM []byte
	PublicPEM  []byte
}

// NewKey generates a key pair with password "test".
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair([]byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.LoadPrivateKey(priv, []byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := sign.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Private: k, Public: p, PrivatePEM: priv, PublicPEM: pub}
}

// WriteKeys writes cosign.key and cosign.pub into dir.
func (k *Key) WriteKeys(t testing.TB, dir string) (priv, pub string) {
	t.Helper()
	priv, pub = filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(priv, k.PrivatePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, k.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// Created is the createdAt of test kits.
var Created = time.Date(2025, 10, 20, 0, 0, 0, 0, time.UTC)

// Files writes files (path → content) under dir.
func Files(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Rules is a valid Prometheus rule file.
const Rules = "groups:\n  - name: test\n    rules:\n      - alert: Up\n        expr: up == 0\n"

// Dashboard is a valid Grafana dashboard.
const Dashboard = `{"uid": "test", "title": "Test"}`

// Build builds a kit named name at version from a few files, one of them
// big enough (bigSize bytes of compressible noise) to span several frames.
func Build(t testing.TB, key *Key, name, version string, bigSize int, out string) *kit.BuildResult {
	t.Helper()
	src := t.TempDir()
	big := make([]byte, bigSize)
	for i := range big {
		big[i] = byte((i * 7919) >> 5)
	}
	Files(t, src, map[string]string{
		"rules/" + name + ".rules.yaml":  Rules,
		"dashboards/" + name + ".json":   `{"uid": "` + name + `", "title": "` + name + `"}`,
		"files/" + name + "/values.yaml": "replicas: 3\n",
		"files/" + name + "/big.bin":     string(big),
	})
	spec := &manifest.Spec{
		Name: name, Version: version, CreatedAt: &Created,
		Compression: &manifest.SpecCompress{FrameSize: 256 << 10},
		Rules:       []manifest.FileSource{{Src: "rules/" + name + ".rules.yaml"}},
		Dashboards:  []manifest.FileSource{{Src: "dashboards/" + name + ".json"}},
		Files:       []manifest.FileSource{{Src: "files/" + name, Dest: name}},
	}
	opts := kit.BuildOptions{Dir: src, OutDir: out, Builder: manifest.Builder{Name: "offkit", Version: "test"}}
	if key != nil {
		opts.Key = key.Private
	}
	res, err := kit.Build(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Entry is one raw tar entry of a hand-made kit.
type Entry struct {
	Header tar.Header
	Data   []byte
}

// File returns a regular file entry.
func File(name string, data []byte) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: Created}, Data: data}
}

// Craft describes a hand-made kit.
type Craft struct {
	// Content lists the content entries; the manifest lists them unless
	// Manifest is set.
	Content []Entry
	// Manifest overrides the manifest built from Content.
	Manifest *manifest.Manifest
	// ManifestBytes overrides the encoded manifest.
	ManifestBytes []byte
	// Key signs the manifest; nil leaves the kit unsigned.
	Key *Key
	// Head replaces the whole head (manifest, signature, SHA256SUMS).
	Head []Entry
	// After is appended to the decompressed stream after the tar trailer.
	After []byte
	// Tar, when set, edits the whole tar stream before it is compressed.
	Tar func(tar []byte) []byte
}

// ManifestFor lists entries as a manifest would, each with the role its
// path implies.
func ManifestFor(entries []Entry) *manifest.Manifest {
	m := &manifest.Manifest{
		SchemaVersion: 1, Name: "hostile", Version: "1.0.0", CreatedAt: Created,
		Builder:     manifest.Builder{Name: "offkit", Version: "test"},
		Compression: manifest.Compression{Algorithm: "zstd", Level: 3, FrameSize: 1 << 20},
	}
	for _, e := range entries {
		sum := sha256.Sum256(e.Data)
		role, err := manifest.RoleOf(e.Header.Name)
		if err != nil {
			role = manifest.RoleFile // a hostile path: the manifest says what it likes
		}
		m.Entries = append(m.Entries, manifest.Entry{Path: e.Header.Name, Size: int64(len(e.Data)), SHA256: hex.EncodeToString(sum[:]), Role: role})
	}
	manifest.SortEntries(m.Entries)
	return m
}

// Write writes the crafted kit to path and returns path.
func (c *Craft) Write(t testing.TB, path string) string {
	t.Helper()
	head := c.Head
	if head == nil {
		m := c.Manifest
		if m == nil {
			m = ManifestFor(c.Content)
		}
		if c.Key != nil && m.Signer == nil {
			signed := *m
			signed.Signer = &manifest.Signer{KeyID: c.Key.Public.KeyID()}
			m = &signed
		}
		mb := c.ManifestBytes
		if mb == nil {
			var err error
			if mb, err = m.Encode(); err != nil {
				t.Fatal(err)
			}
		}
		head = append(head, File(kitfile.ManifestPath, mb))
		if c.Key != nil {
			sig, err := c.Key.Private.SignBlob(mb)
			if err != nil {
				t.Fatal(err)
			}
			head = append(head, File(kitfile.SignaturePath, sig))
		}
		head = append(head, File(kitfile.SumsPath, m.SHA256SUMS()))
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range append(head, c.Content...) {
		h := e.Header
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if len(e.Data) > 0 {
			if _, err := tw.Write(e.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	tb.Write(c.After)
	data := tb.Bytes()
	if c.Tar != nil {
		data = c.Tar(data)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := seekable.NewWriter(f, seekable.WriterOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		end := min(off+1<<20, len(data))
		if err := zw.WriteFrame(append(seekable.Buffer(end-off), data[off:end]...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
