package kittest

import (
	"context"
	"os"
	"path/filepath"

	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// ExampleKit builds in dir a small signed kit, demo 1.0.0 created at
// Created, whose only content is files/demo/values.yaml ("replicas: 3\n"),
// for the runnable examples (which have no testing.T). It returns the
// kit's path and the public half of the key that signed it.
func ExampleKit(dir string) (string, *sign.PublicKey, error) {
	priv, pub, err := sign.GenerateKeyPair([]byte("example"))
	if err != nil {
		return "", nil, err
	}
	key, err := sign.LoadPrivateKey(priv, []byte("example"))
	if err != nil {
		return "", nil, err
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "demo"), 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "demo", "values.yaml"), []byte("replicas: 3\n"), 0o644); err != nil {
		return "", nil, err
	}
	created := Created
	spec := &manifest.Spec{Name: "demo", Version: "1.0.0", CreatedAt: &created,
		Files: []manifest.FileSource{{Src: "demo", Dest: "demo"}}}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: src, OutDir: filepath.Join(dir, "out"), Key: key, Builder: manifest.Builder{Name: "offkit", Version: "example"},
	})
	if err != nil {
		return "", nil, err
	}
	p, err := sign.LoadPublicKey(pub)
	return res.Path, p, err
}
