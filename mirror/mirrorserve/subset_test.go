package mirrorserve_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
	"github.com/offkit/offkit/mirror/mirrorserve"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// A kit that carries one domain (domains: [primary]) of the example
// Concelier export, built, installed and served: the index the site serves
// names only primary, so the connector's flow (index → each domain's
// manifest → bundle + signature) gets no 404, and a second run only 304s.
func TestConsumerDomainSubset(t *testing.T) {
	ex, err := filepath.Abs("../../examples/zastava-runtime/mirror")
	if err != nil {
		t.Fatal(err)
	}
	keys := []manifest.MirrorKey{{Path: filepath.Join(ex, "keys", "mirror-ed25519.jwk")}, {Path: filepath.Join(ex, "keys", "mirror-key.pub"), ID: "mirror-p256"}}
	spec := &manifest.Spec{Name: "feeds", Version: "1.0.0", CreatedAt: &kittest.Created, Mirror: []manifest.MirrorSource{
		{Kind: "concelier", Root: filepath.Join(ex, "concelier"), Domains: []string{"primary"}, Keys: keys},
		{Kind: "excititor", Root: filepath.Join(ex, "excititor"), Keys: keys},
	}}
	key := kittest.NewKey(t)
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: t.TempDir(), OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "site")
	s, err := site.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(context.Background(), res.Path, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ks := &mirror.KeySet{}
	for _, k := range keys {
		if err := ks.AddFile(k.Path, k.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	base := startServe(t, site.NewView(root), mirrorserve.Options{})
	resp, err := http.Get(base + "/concelier/exports/index.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var idx struct {
		SchemaVersion int `json:"schemaVersion"`
		Domains       []struct {
			ID, DisplayName string
		} `json:"domains"`
	}
	if err := json.Unmarshal(b, &idx); err != nil || resp.StatusCode != 200 || idx.SchemaVersion != 1 ||
		len(idx.Domains) != 1 || idx.Domains[0].ID != "primary" || idx.Domains[0].DisplayName != "Primary" {
		t.Fatalf("index of a kit carrying primary only: %d %s", resp.StatusCode, b)
	}
	c := newConnector(t, base, ks)
	c.run()
	if c.processed != 2 { // concelier/primary, excititor/community/consensus
		t.Fatalf("first run: %d processed, state %v", c.processed, c.state)
	}
	first := c.fetched
	c.run()
	if c.fetched != 0 || c.notModified != first {
		t.Fatalf("second run: %d fetched, %d not modified (first run fetched %d)", c.fetched, c.notModified, first)
	}
}
