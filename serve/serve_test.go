package serve

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadyzAndGracefulShutdown(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0", ShutdownGrace: Duration{5 * time.Second}}, nil)
	var broken atomic.Bool
	s.Ready("site", func() error {
		if broken.Load() {
			return os.ErrNotExist
		}
		return nil
	})
	release := make(chan struct{})
	s.Handle("GET /slow", "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("start "))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("end"))
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addr, err := s.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	if res, err := http.Get(base + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v", err)
	}
	broken.Store(true)
	if res, _ := http.Get(base + "/readyz"); res.StatusCode != 503 {
		t.Fatalf("readyz with a failing check: %d", res.StatusCode)
	}
	broken.Store(false)
	got := make(chan string, 1)
	go func() {
		res, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel() // SIGTERM: the in-flight download must finish.
	time.Sleep(100 * time.Millisecond)
	close(release)
	if b := <-got; b != "start end" {
		t.Fatalf("in-flight request during shutdown got %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "serve.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:9000\nhealthListen: 127.0.0.1:9001\nreadHeaderTimeout: 5s\nwriteStallTimeout: 1m\nmaxConnectionsPerClient: 8\nregistry:\n  stripPrefix: stellaops/\n"), 0o644)
	c, err := LoadConfig(p)
	if err != nil || c.Listen != "127.0.0.1:9000" || c.HealthListen != "127.0.0.1:9001" || c.ReadHeaderTimeout.Duration != 5*time.Second ||
		c.WriteStallTimeout.Duration != time.Minute || c.MaxConnectionsPerClient != 8 || c.Registry.StripPrefix != "stellaops/" {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := LoadConfig("../examples/site-monitoring/serve.yaml"); err != nil || c.MaxConnectionsPerClient != DefaultMaxConnectionsPerClient {
		t.Fatalf("the example serve.yaml: %+v %v", c, err)
	}
	for _, bad := range []string{"listen: [\n", "bogus: 1\n", "readTimeout: forever\n", "registry:\n  nope: true\n", "maxConnectionsPerClient: 0\n", "healthListen: \"\"\n"} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := LoadConfig(p); err == nil {
			t.Fatalf("config %q accepted", bad)
		}
	}
}
