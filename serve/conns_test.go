package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// runServer starts s on loopback until the test ends and returns its main
// and health addresses.
func runServer(t *testing.T, s *Server) (addr, health string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	addr, err := s.Addr(wctx)
	if err != nil {
		t.Fatal(err)
	}
	health, _ = s.HealthAddr(wctx)
	return addr, health
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all loopback), so a test can be several
// clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustGet fails the test unless GET url answers 200 within the client's
// timeout.
func mustGet(t *testing.T, c *http.Client, url string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
}

// TestIdleKeepAliveFlood: one client address holding 1,100 idle keep-alive
// connections (more than the default connection cap) does not stop
// /healthz, /metrics or other clients from being answered.
func TestIdleKeepAliveFlood(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", ShutdownGrace: Duration{2 * time.Second}}, nil)
	s.Handle("GET /work", "work", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	addr, health := runServer(t, s)

	const flood = 1100
	conns := make(chan net.Conn, flood)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range flood / 50 {
				d := net.Dialer{Timeout: 2 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					continue // the backlog is full: as good as held
				}
				conns <- c
				// One request, then the connection stays open and idle.
				c.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "GET /work HTTP/1.1\r\nHost: x\r\n\r\n")
				http.ReadResponse(bufio.NewReader(c), nil)
			}
		}()
	}
	wg.Wait()
	close(conns)
	defer func() {
		for c := range conns {
			c.Close()
		}
	}()

	mustGet(t, clientFrom("127.0.0.1"), "http://"+health+"/healthz")
	mustGet(t, clientFrom("127.0.0.1"), "http://"+health+"/metrics")
	// Another client address still gets its requests through.
	other := clientFrom("127.0.0.2")
	mustGet(t, other, "http://"+addr+"/work")
	mustGet(t, other, "http://"+addr+"/healthz")

	// The metrics show the refused connections, and the flood holding its
	// 64 (the other client's last connections may not be closed yet).
	m := metrics(t, health)
	var open int
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, `offkit_http_open_connections{listener="main"} `); ok {
			fmt.Sscan(v, &open)
		}
	}
	if !strings.Contains(m, `offkit_http_connections_refused_total{listener="main"}`) ||
		open < DefaultMaxConnectionsPerClient || open > DefaultMaxConnectionsPerClient+2 {
		t.Errorf("metrics do not show the refused and open connections:\n%s", m)
	}
	// The health listener serves nothing else.
	res, err := clientFrom("127.0.0.1").Get("http://" + health + "/work")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("health listener GET /work: %d", res.StatusCode)
	}
}

// TestIdleKeepAliveTimeout: an idle keep-alive connection is closed after
// IdleTimeout.
func TestIdleKeepAliveTimeout(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0", IdleTimeout: Duration{300 * time.Millisecond}, ShutdownGrace: Duration{time.Second}}, nil)
	addr, _ := runServer(t, s)
	c := dialFrom(t, "127.0.0.1", addr)
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("idle connection closed after %v", waited)
	}
}

// TestSlowReaders: clients that request a large response and never read it
// are cut off once they stop taking bytes, even when they hold every
// connection slot from several addresses; /healthz answers meanwhile.
func TestSlowReaders(t *testing.T) {
	const size = 256 << 20
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, size); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Listen: "127.0.0.1:0", HealthListen: "127.0.0.1:0", MaxConnections: 8, MaxConnectionsPerClient: 4,
		WriteStallTimeout: Duration{300 * time.Millisecond}, ShutdownGrace: Duration{2 * time.Second}}, nil)
	// One part writes from memory, one serves a file (sendfile).
	s.Handle("GET /mem", "mem", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		buf := make([]byte, 1<<20)
		for range size / len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	s.Handle("GET /file", "file", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, big)
	}))
	s.Handle("GET /work", "work", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	addr, health := runServer(t, s)

	// Two attacking addresses take all 8 slots and read nothing.
	var attackers []net.Conn
	for i := range 8 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 1+2*(i%2)), addr)
		defer c.Close()
		fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", []string{"mem", "file"}[i/4])
		attackers = append(attackers, c)
	}
	time.Sleep(200 * time.Millisecond)
	mustGet(t, clientFrom("127.0.0.1"), "http://"+health+"/healthz")
	mustGet(t, clientFrom("127.0.0.2"), "http://"+addr+"/work")
	// Every stalled response has been given up (a client that had started
	// reading meanwhile would get its whole response).
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := metrics(t, health); strings.Contains(m, "\noffkit_http_in_flight_requests 1\n") { // this scrape
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stalled responses still in flight after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, c := range attackers {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if n >= size || (err != nil && !isReset(err)) {
			t.Errorf("slow reader %d: read %d bytes, %v; want cut off", i, n, err)
		}
	}
}

func metrics(t *testing.T, health string) string {
	t.Helper()
	res, err := clientFrom("127.0.0.1").Get("http://" + health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	m, _ := io.ReadAll(res.Body)
	return string(m)
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}
