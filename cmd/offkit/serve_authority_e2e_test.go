package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/kittest"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// offkit serve, end to end over loopback: serve.yaml protects the Concelier
// mirror and enables authority:; the guard fetches the issuer's metadata
// at start, the mirror's index answers 401 without a token, 200 with one,
// 403 without the scope, each with its audit line; once the issuer is down
// past the tolerance (serve's clock moved on), tokens get 503 and /readyz
// fails naming the issuer.
func TestServeAuthorityMirrorEndToEnd(t *testing.T) {
	iss := newTokenIssuer(t)
	root := t.TempDir()
	_, mk, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := kittest.MirrorSite(root, mk, kittest.MirrorExport{Kind: "concelier", ExportID: "20251123T000000Z",
		Created: "2025-11-23T00:00:00Z", Domains: []string{"primary"}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(cfg, []byte(`
mirror:
  concelier:
    requireAuthentication: true
authority:
  enabled: true
  issuer: "`+iss.URL+`"
  allowLoopbackHttp: true
  audiences: ["api://concelier"]
  resilience: {enableRetries: false, offlineCacheTolerance: "00:10:00"}
`), 0o644)

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logs := &lockedBuffer{}
	a := &app{stdout: io.Discard, stderr: logs, now: clock, drain: defaultDrain}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- a.run(ctx, []string{"serve", "--root", root, "--config", cfg, "--listen", addr}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 && code != 130 {
			t.Errorf("serve exited %d\n%s", code, logs.String())
		}
	}()

	get := func(path, auth string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, _ := get("/readyz", "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s\n%s", code, body, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	const route = "/concelier/exports/index.json"
	code, body, h := get(route, "")
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, "no token") {
		t.Fatalf("without a token: %d %q %v", code, body, h)
	}
	if code, body, _ := get(route, "Bearer "+iss.token(t, clock(), "concelier.mirror.read")); code != 200 || !strings.Contains(body, `"primary"`) {
		t.Fatalf("with a token: %d %q", code, body)
	}
	if code, body, _ := get(route, "Bearer "+iss.token(t, clock(), "other.scope")); code != 403 || !strings.Contains(body, "concelier.mirror.read") {
		t.Fatalf("without the scope: %d %q", code, body)
	}

	// The issuer goes away and serve's clock passes lifetime + tolerance.
	iss.mu.Lock()
	iss.down = true
	iss.mu.Unlock()
	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	code, body, _ = get(route, "Bearer "+iss.token(t, clock(), "concelier.mirror.read"))
	if code != 503 || !strings.Contains(body, iss.URL) {
		t.Fatalf("beyond tolerance: %d %q", code, body)
	}
	code, body, _ = get("/readyz", "")
	if code != 503 || !strings.Contains(body, "authority: ") || !strings.Contains(body, iss.URL) {
		t.Fatalf("/readyz beyond tolerance: %d %q", code, body)
	}

	audit := logs.String()
	for _, want := range []string{
		"route=" + route + " status=401 subject=(anonymous) clientId=(none) scopes=(none) bypass=False remote=127.0.0.1 outcome=no_token",
		"route=" + route + " status=200 subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read bypass=False remote=127.0.0.1 outcome=ok",
		"route=" + route + " status=403 subject=ops@example.com clientId=concelier-cli scopes=other.scope bypass=False remote=127.0.0.1 outcome=scope",
		"route=" + route + " status=503 subject=(anonymous) clientId=(none) scopes=(none) bypass=False remote=127.0.0.1 outcome=expired_metadata",
	} {
		if !strings.Contains(audit, "logger=offkit.authorization.audit "+want) {
			t.Errorf("no audit line %q", want)
		}
	}
}
