package mirrorserve_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/mirror"
	"github.com/offkit/offkit/mirror/mirrorserve"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/site"
)

// switchable serves one generation folder and can be switched to another,
// as an install does.
type switchable struct {
	mu      sync.Mutex
	dir, id string
}

func (s *switchable) OpenGeneration() (*os.Root, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := os.OpenRoot(s.dir)
	return r, s.id, err
}

// Generation makes switchable a mirrorserve.Folders, as site.View is.
func (s *switchable) Generation() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir, nil
}

// The site's view has the Folders ability the handler uses.
var _ mirrorserve.Folders = (*site.View)(nil)

func (s *switchable) set(dir, id string) {
	s.mu.Lock()
	s.dir, s.id = dir, id
	s.mu.Unlock()
}

// fingerprint is what the connector keeps per export to resume: the
// bundle's digest and its generatedAt.
type fingerprint struct{ digest, generatedAt string }

// connector is a mirror consumer written from the connector's documented
// flow: index → per-domain manifest → bundle + detached signature → verify
// → keep the fingerprint; conditional requests with the ETags it kept.
type connector struct {
	t    *testing.T
	base string
	keys *mirror.KeySet

	etags  map[string]string
	bodies map[string][]byte
	state  map[string]fingerprint // by kind/domain[/exportKey]

	// Counters of the last run.
	fetched, notModified, processed int
	bodyBytes                       int64
}

func (c *connector) get(p string) []byte {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+p, nil)
	if e := c.etags[p]; e != "" {
		req.Header.Set("If-None-Match", e)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.bodyBytes += int64(len(b))
	switch resp.StatusCode {
	case http.StatusNotModified:
		c.notModified++
		return c.bodies[p]
	case http.StatusOK:
		c.fetched++
		c.etags[p] = resp.Header.Get("ETag")
		c.bodies[p] = b
		return b
	}
	c.t.Fatalf("GET %s: %s %s", p, resp.Status, b)
	return nil
}

// verify checks sig over blob with the trusted keys, as the connector does
// with SIGNATURE__ENABLED.
func (c *connector) verify(name string, blob, sig []byte) {
	c.t.Helper()
	s, err := mirror.ParseSignature(name+".jws", sig)
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	v, err := s.Verify(bytes.NewReader(blob), c.keys, name)
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	sum := sha256.Sum256(blob)
	if v.SHA256 != hex.EncodeToString(sum[:]) {
		c.t.Fatalf("%s: verified digest %s", name, v.SHA256)
	}
}

// keep records the fingerprint of an export; it reports whether it is new
// (the connector would parse and map it).
func (c *connector) keep(key string, blob []byte) {
	var doc struct {
		GeneratedAt string `json:"generatedAt"`
	}
	if err := json.Unmarshal(blob, &doc); err != nil {
		c.t.Fatalf("%s: %v", key, err)
	}
	sum := sha256.Sum256(blob)
	fp := fingerprint{digest: hex.EncodeToString(sum[:]), generatedAt: doc.GeneratedAt}
	if c.state[key] != fp {
		c.state[key] = fp
		c.processed++
	}
}

func (c *connector) run() {
	c.fetched, c.notModified, c.processed, c.bodyBytes = 0, 0, 0, 0
	var index struct {
		Domains []struct{ ID string } `json:"domains"`
	}
	if err := json.Unmarshal(c.get("/concelier/exports/index.json"), &index); err != nil {
		c.t.Fatal(err)
	}
	for _, d := range index.Domains {
		base := "/concelier/exports/mirror/" + d.ID + "/"
		var man struct {
			DomainID string `json:"domainId"`
		}
		if err := json.Unmarshal(c.get(base+"manifest.json"), &man); err != nil || man.DomainID != d.ID {
			c.t.Fatalf("manifest of %s: %v %q", d.ID, err, man.DomainID)
		}
		bundle, sig := c.get(base+"bundle.json"), c.get(base+"bundle.json.jws")
		c.verify("bundle.json", bundle, sig)
		c.keep("concelier/"+d.ID, bundle)
	}
	var domains struct {
		Domains []struct{ ID string } `json:"domains"`
	}
	if err := json.Unmarshal(c.get("/excititor/mirror/domains"), &domains); err != nil {
		c.t.Fatal(err)
	}
	for _, d := range domains.Domains {
		var idx struct {
			Exports []struct {
				ExportKey, Format, File, SHA256 string
			} `json:"exports"`
		}
		if err := json.Unmarshal(c.get("/excititor/mirror/"+d.ID+"/index"), &idx); err != nil {
			c.t.Fatal(err)
		}
		for _, e := range idx.Exports {
			p := fmt.Sprintf("/excititor/mirror/domains/%s/exports/%s/%s", d.ID, e.ExportKey, e.Format)
			b := c.get(p)
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.SHA256 {
				c.t.Fatalf("%s: digest differs from the domain index", p)
			}
			if e.Format == "json" {
				c.verify(e.File, b, c.get(p+".jws"))
				c.keep("excititor/"+d.ID+"/"+e.ExportKey, b)
			}
		}
	}
}

// startServe runs offkit serve's server with the mirror handler over src
// on loopback until the test ends, and returns its base URL.
func startServe(t *testing.T, src mirrorserve.Generations, o mirrorserve.Options) string {
	t.Helper()
	srv := serve.New(serve.Config{Listen: "127.0.0.1:0"}, nil)
	h, err := mirrorserve.New(src, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range mirrorserve.Prefixes {
		srv.Handle(p, "mirror", h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addr, err := srv.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "http") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/")
}

func newConnector(t *testing.T, base string, keys *mirror.KeySet) *connector {
	return &connector{t: t, base: base, keys: keys,
		etags: map[string]string{}, bodies: map[string][]byte{}, state: map[string]fingerprint{}}
}

// The connector fetches and verifies every domain from a real offkit serve
// on loopback; a second run with its fingerprints and ETags downloads
// nothing (only 304s); after a new export is installed it fetches exactly
// the changed files.
func TestConsumer(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	gen1, gen2 := t.TempDir(), t.TempDir()
	first := []kittest.MirrorExport{
		{Kind: "concelier", ExportID: "20251123T000000Z", Created: "2025-11-23T00:00:00Z", Domains: []string{"primary", "community"}, BundleSize: 1 << 20},
		{Kind: "excititor", ExportID: "20251123T000000Z", Created: "2025-11-23T00:00:00Z", Domains: []string{"community"}},
	}
	if _, err := kittest.MirrorGeneration(gen1, key, first...); err != nil {
		t.Fatal(err)
	}
	next := append(first[:1:1], kittest.MirrorExport{Kind: "concelier", ExportID: "20251124T000000Z", Created: "2025-11-24T00:00:00Z", Domains: []string{"primary", "community"}}, first[1])
	if _, err := kittest.MirrorGeneration(gen2, key, next...); err != nil {
		t.Fatal(err)
	}
	src := &switchable{dir: gen1, id: "1"}
	keys, err := mirror.NewKeySet(mirror.Key{ID: "mirror-fixture", Public: pub})
	if err != nil {
		t.Fatal(err)
	}
	c := newConnector(t, startServe(t, src, mirrorserve.Options{}), keys)
	c.run()
	// index, 2 × (manifest, bundle, signature), domains, community index,
	// consensus + signature, statements.
	if c.fetched != 12 || c.notModified != 0 || c.processed != 3 || c.bodyBytes < 2<<20 {
		t.Fatalf("first run: %d fetched, %d not modified, %d processed, %d bytes", c.fetched, c.notModified, c.processed, c.bodyBytes)
	}
	state := fmt.Sprint(c.state)
	c.run()
	if c.fetched != 0 || c.notModified != 12 || c.processed != 0 || c.bodyBytes != 0 || fmt.Sprint(c.state) != state {
		t.Fatalf("second run: %d fetched, %d not modified, %d processed, %d bytes", c.fetched, c.notModified, c.processed, c.bodyBytes)
	}
	// A new Concelier export: the index, manifests, bundles and signatures
	// change; the Excititor files do not.
	src.set(gen2, "2")
	c.run()
	if c.fetched != 7 || c.notModified != 5 || c.processed != 2 {
		t.Fatalf("after a new export: %d fetched, %d not modified, %d processed", c.fetched, c.notModified, c.processed)
	}
}

// The connector against a site where kits with signed exports were
// installed (site.Install, served through site.View): every file verifies;
// a second run gets only 304s; after a kit with a newer Concelier export is
// installed, only what changed is processed again.
func TestConsumerInstalledSite(t *testing.T) {
	dir := t.TempDir()
	key := kittest.NewKey(t)
	_, mkey, _ := ed25519.GenerateKey(nil)
	v1, keyFile := kittest.SignedMirrorKit(t, key, mkey, "feeds", "1.0.0", []string{"20251123T000000Z"}, []string{"20251123T000000Z"})
	v2, _ := kittest.SignedMirrorKit(t, key, mkey, "feeds", "1.1.0", []string{"20251124T000000Z"}, []string{"20251123T000000Z"})
	root := filepath.Join(dir, "site")
	install := func(kitPath string) {
		s, err := site.Open(root, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Install(context.Background(), kitPath, site.InstallOptions{Keys: []*sign.PublicKey{key.Public}, Now: kittest.Created.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	install(v1)
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := mirror.ParseKeys(keyFile, kb, "")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := mirror.NewKeySet(ks...)
	if err != nil {
		t.Fatal(err)
	}
	c := newConnector(t, startServe(t, site.NewView(root), mirrorserve.Options{}), keys)
	c.run()
	first := c.fetched
	if first == 0 || c.processed != 3 {
		t.Fatalf("first run: %d fetched, %d processed", c.fetched, c.processed)
	}
	c.run()
	if c.fetched != 0 || c.notModified != first || c.processed != 0 || c.bodyBytes != 0 {
		t.Fatalf("second run: %d fetched, %d not modified, %d processed, %d bytes", c.fetched, c.notModified, c.processed, c.bodyBytes)
	}
	before := map[string]fingerprint{}
	for k, v := range c.state {
		before[k] = v
	}
	install(v2)
	c.run()
	// The new export's primary bundle differs; its community bundle has the
	// same bytes as before, so its fingerprint is unchanged and it is not
	// processed again.
	if c.processed != 1 || c.state["concelier/primary"] == before["concelier/primary"] || c.state["concelier/community"] != before["concelier/community"] {
		t.Fatalf("after a newer export: %d processed, state %v (was %v)", c.processed, c.state, before)
	}
}

// Hostile requests through the real server: an Authorization header of
// 1 MB is refused by the server before the handler (431), a Basic value
// without a colon is 401 with the challenge.
func TestServeHostileAuthorization(t *testing.T) {
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(nil)
	if _, err := kittest.MirrorGeneration(dir, key, kittest.MirrorExport{Kind: "concelier", ExportID: "20251123T000000Z", Created: "2025-11-23T00:00:00Z", Domains: []string{"primary"}}); err != nil {
		t.Fatal(err)
	}
	base := startServe(t, &switchable{dir: dir, id: "1"}, mirrorserve.Options{Config: mirrorserve.Config{Concelier: mirrorserve.Part{RequireAuthentication: true}}})
	for _, tc := range []struct {
		auth string
		code int
	}{
		{"Basic " + strings.Repeat("A", 1<<20), http.StatusRequestHeaderFieldsTooLarge},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), http.StatusUnauthorized},
		{"Bearer " + strings.Repeat("x", 32<<10), http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/concelier/exports/mirror/primary/bundle.json", nil)
		req.Header.Set("Authorization", tc.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("Authorization of %d bytes: %d, want %d", len(tc.auth), resp.StatusCode, tc.code)
		}
		// A refused Bearer token is named invalid_token; Basic
		// credentials get the plain Bearer challenge (RFC 6750 §3.1).
		want := `Bearer realm="offkit"`
		if strings.HasPrefix(tc.auth, "Bearer ") {
			want += `, error="invalid_token"`
		}
		if ch := resp.Header.Get("WWW-Authenticate"); tc.code == 401 && !strings.HasPrefix(ch, want) {
			t.Errorf("401 without WWW-Authenticate: %s: %v", want, resp.Header)
		}
	}
}
