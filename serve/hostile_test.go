package serve

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h at GET /work with cfg on loopback until the test ends and
// returns the address.
func start(t *testing.T, cfg Config, h http.Handler) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, nil)
	s.Handle("GET /work", "work", h)
	addr, _ := runServer(t, s)
	return addr
}

// TestSlowloris: a client that never finishes its headers is cut off after
// the header timeout, and does not keep a connection slot.
func TestSlowloris(t *testing.T) {
	addr := start(t, Config{ReadHeaderTimeout: Duration{300 * time.Millisecond}, MaxConnections: 2, ShutdownGrace: Duration{time.Second}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /work HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns = append(conns, c)
	}
	// Both slots are taken; the slow clients are dropped after the timeout
	// and a real request gets through.
	start := time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get("http://" + addr + "/work")
	if err != nil {
		t.Fatalf("request after slow clients: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("slow client was not cut off: %v", err)
		}
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("served in %v while both slots were held: the connection cap is not enforced", waited)
	}
}

// TestConnectionCap: a thousand clients at once are served, never more than
// MaxConnections at a time, and the server stays up.
func TestConnectionCap(t *testing.T) {
	var cur, peak atomic.Int64
	addr := start(t, Config{MaxConnections: 16, ShutdownGrace: Duration{5 * time.Second}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := cur.Add(1)
			defer cur.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			w.Write([]byte("ok"))
		}))
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One connection per client, closed after the request.
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Get("http://" + addr + "/work")
			if err != nil {
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1000 {
		t.Fatalf("%d of 1000 clients served", ok.Load())
	}
	if peak.Load() > 16 {
		t.Fatalf("%d requests at once, cap is 16", peak.Load())
	}
}
