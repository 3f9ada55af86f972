package authority

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testKey is a signing key with its kid and algorithm.
type testKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer crypto.Signer
}

func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	ecKey2   *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func genKeys(t testing.TB) {
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ecKey2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
	})
}

// issuerKeys are the keys the fake issuer publishes: kid "rs" (RS256), "ps"
// (PS256, the same RSA key), "es" (ES256), "ed" (EdDSA).
func issuerKeys(t testing.TB) []testKey {
	genKeys(t)
	return []testKey{
		{"rs", jose.RS256, rsaKey},
		{"ps", jose.PS256, rsaKey},
		{"es", jose.ES256, ecKey},
		{"ed", jose.EdDSA, edKey},
	}
}

func jwksOf(keys ...testKey) []byte {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return b
}

// fakeIssuer is an Authority on loopback: discovery and JWKS with ETags and
// max-age; it can rotate keys, fail, lie about its issuer or jwks_uri, and
// serve garbage or huge bodies.
type fakeIssuer struct {
	*httptest.Server
	mu        sync.Mutex
	jwks      []byte
	gen       int // bumps the ETag on rotation
	maxAge    int // -1: no Cache-Control
	status    int // non-zero: every request answers this
	issuer    string
	jwksURI   string
	discBody  []byte // non-nil: served as discovery
	etag      string // non-empty: the ETag of both documents
	jwksBody  []byte // non-nil: served as JWKS
	requests  []string
	condition []string // If-None-Match received
}

func newFakeIssuer(t testing.TB) *fakeIssuer {
	f := &fakeIssuer{maxAge: 300, jwks: jwksOf(issuerKeys(t)...)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	f.issuer = f.URL
	f.jwksURI = f.URL + "/jwks"
	return f
}

func (f *fakeIssuer) set(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIssuer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.Path)
	f.condition = append(f.condition, r.Header.Get("If-None-Match"))
	if f.status != 0 {
		http.Error(w, "down", f.status)
		return
	}
	if f.maxAge >= 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", f.maxAge))
	}
	var body []byte
	var etag string
	switch r.URL.Path {
	case DiscoveryPath:
		body = []byte(fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q,"token_endpoint":%q}`, f.issuer, f.jwksURI, f.URL+"/token"))
		if f.discBody != nil {
			body = f.discBody
		}
		etag = fmt.Sprintf(`"disc-%d"`, len(body))
	case "/jwks":
		body = f.jwks
		if f.jwksBody != nil {
			body = f.jwksBody
		}
		etag = fmt.Sprintf(`"jwks-%d"`, f.gen)
	default:
		http.NotFound(w, r)
		return
	}
	if f.etag != "" {
		etag = f.etag
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// rotate publishes keys instead of the current set.
func (f *fakeIssuer) rotate(keys ...testKey) {
	f.set(func(f *fakeIssuer) { f.jwks = jwksOf(keys...); f.gen++ })
}

// fakeClock is the injected clock: Sleep records the delay and moves time.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (f *fakeIssuer) options() Options {
	return Options{
		Enabled:           true,
		Issuer:            f.URL,
		Audiences:         []string{"api://concelier"},
		RequiredScopes:    []string{"concelier.mirror.read"},
		AllowLoopbackHTTP: true,
	}
}

func (f *fakeIssuer) refresher(t testing.TB, root string, c *fakeClock) *Refresher {
	return &Refresher{Options: f.options(), Root: root, Client: f.Client(), Now: c.Now, Sleep: c.Sleep}
}

func countPrefix(ss []string, p string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			n++
		}
	}
	return n
}
