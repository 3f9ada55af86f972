// Package serve is the one HTTP server of `offkit serve`: every part
// (registry, rules and dashboards, later mirrors and debuginfod) is a handler
// mounted on it, and it adds what they all need: request logging;
// Prometheus metrics by route and status; /healthz and /readyz; optional TLS;
// graceful shutdown that lets in-flight downloads finish.
//
// It is read-only by construction: the parts register only GET and HEAD
// handlers, and any other method is answered by the part itself (the OCI
// registry answers 405 UNSUPPORTED) or by this package with 405.
//
// It holds up under hostile clients with these limits (Config, serve.yaml):
//
//   - Connections: at most MaxConnections open (more wait to be accepted)
//     and at most MaxConnectionsPerClient from one client IP address (an
//     IPv6 client counts as its /64; more are closed as soon as they are
//     accepted).
//   - Time: ReadHeaderTimeout for the request head, ReadTimeout for the
//     whole request, IdleTimeout between keep-alive requests, WriteTimeout
//     for the whole response, and WriteStallTimeout for each 64 KiB of it: a
//     client that stops reading is cut off and frees its slot.
//   - Size: request bodies over MaxBodyBytes fail; headers over 64 KiB are
//     refused.
//   - Metrics: label values come from fixed sets (the routes the parts
//     register and "other"; the standard methods and "other"; status codes
//     100-599 and "other"), so no request can grow /metrics.
//   - Health: HealthListen, when set, is a second listener that serves only
//     /healthz, /readyz and /metrics with slots of its own
//     (HealthMaxConnections, HealthMaxConnectionsPerClient, 10s timeouts):
//     probes and scrapes pointed at it answer while clients hold every slot
//     of Listen. Without it they share Listen's slots.
//   - Trees (/rules, /dashboards; see Tree): the index is built once per
//     generation from the kits' manifests, never by reading the files; a
//     request reads one generation whole; only the files the manifests list
//     are served, with a Content-Type from a fixed allow-list and nosniff.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/offkit/offkit/internal/httpstat"
)

// Server is the HTTP server of a site.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	health  *http.ServeMux // /healthz, /readyz and /metrics alone
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	bytes   *prometheus.CounterVec
	flight  prometheus.Gauge
	refused *prometheus.CounterVec
	open    *prometheus.GaugeVec
	mu      sync.Mutex
	checks  map[string]func() error
	started chan [2]string
}

// New returns a server for cfg; log may be nil.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     log,
		mux:     http.NewServeMux(),
		health:  http.NewServeMux(),
		reg:     prometheus.NewRegistry(),
		checks:  map[string]func() error{},
		started: make(chan [2]string, 1),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_http_response_bytes_total", Help: "Response body bytes served, by route.",
		}, []string{"route"}),
		flight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offkit_http_in_flight_requests", Help: "Requests being served now.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_http_connections_refused_total", Help: "Connections closed on accept because their client address had too many open, by listener.",
		}, []string{"listener"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "offkit_http_open_connections", Help: "Open connections, by listener.",
		}, []string{"listener"}),
	}
	s.reg.MustRegister(s.reqs, s.bytes, s.flight, s.refused, s.open, collectors.NewGoCollector())
	for _, mux := range []*http.ServeMux{s.mux, s.health} {
		mux.Handle("GET /healthz", s.instrument("healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
		})))
		mux.Handle("GET /readyz", s.instrument("readyz", http.HandlerFunc(s.readyz)))
		mux.Handle("GET /metrics", s.instrument("metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	}
	return s
}

// Metrics returns the registry parts add their own collectors to.
func (s *Server) Metrics() *prometheus.Registry { return s.reg }

// Handle mounts h at pattern (a ServeMux pattern), instrumented as route.
func (s *Server) Handle(pattern, route string, h http.Handler) {
	s.mux.Handle(pattern, s.instrument(route, h))
}

// Ready adds a readiness check: /readyz fails while any check fails.
func (s *Server) Ready(name string, check func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var failed []string
	for name, c := range s.checks {
		if err := c(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
		return
	}
	w.Write([]byte("ready\n"))
}

// Handler returns the whole handler (for tests).
func (s *Server) Handler() http.Handler { return s.serveMux(s.mux) }

// serveMux counts a request no part handles (404, 405) under the route
// "other", so that made-up paths never become label values.
func (s *Server) serveMux(mux *http.ServeMux) http.Handler {
	other := s.instrument("other", mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			other.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// methodLabel is the method as a metrics label: the standard methods are
// kept, any other token is "other", so a client cannot mint label values.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// writeChunk is how many bytes a response writes between two checks of the
// client's progress: each chunk must be taken within WriteStallTimeout.
const writeChunk = 64 << 10

// pacer holds a client that stops reading to a minimum pace: before each
// chunk of at most writeChunk bytes (httpstat.Writer's Pace) it moves the
// connection's write deadline to WriteStallTimeout from now (never past the
// request's WriteTimeout), so a write blocked on a client that takes
// nothing fails and frees the connection.
type pacer struct {
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time // start + WriteTimeout
	setAt time.Time // when the deadline was last moved
	fixed bool      // the writer has no deadline to move
}

// progress moves the write deadline before the next chunk.
func (r *pacer) progress() {
	if r.fixed || r.stall <= 0 {
		return
	}
	now := time.Now()
	if !r.setAt.IsZero() && now.Sub(r.setAt) < r.stall/8 {
		return
	}
	d := now.Add(r.stall)
	if !r.end.IsZero() && d.After(r.end) {
		d = r.end
	}
	if err := r.rc.SetWriteDeadline(d); err != nil {
		r.fixed = true
		return
	}
	r.setAt = now
}

// writerOnly hides any ReadFrom method, so io.Copy does not loop back.
type writerOnly struct{ io.Writer }

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.flight.Inc()
		defer s.flight.Dec()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		p := &pacer{rc: http.NewResponseController(w),
			stall: s.cfg.WriteStallTimeout.Duration, end: start.Add(s.cfg.WriteTimeout.Duration)}
		rec := &httpstat.Writer{ResponseWriter: w, Pace: p.progress, Chunk: writeChunk}
		h.ServeHTTP(rec, r)
		code := rec.Status()
		s.reqs.WithLabelValues(route, methodLabel(r.Method), httpstat.CodeLabel(code)).Inc()
		s.bytes.WithLabelValues(route).Add(float64(rec.Bytes))
		s.log.Info("request", "route", route, "method", r.Method, "path", r.URL.Path, "status", code,
			"bytes", rec.Bytes, "duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

// Addr returns the address the server listens on once Run has started.
func (s *Server) Addr(ctx context.Context) (string, error) {
	a, err := s.addrs(ctx)
	return a[0], err
}

// HealthAddr returns the address of the health listener once Run has
// started ("" when HealthListen is not set).
func (s *Server) HealthAddr(ctx context.Context) (string, error) {
	a, err := s.addrs(ctx)
	return a[1], err
}

func (s *Server) addrs(ctx context.Context) ([2]string, error) {
	select {
	case a := <-s.started:
		s.started <- a
		return a, nil
	case <-ctx.Done():
		return [2]string{}, ctx.Err()
	}
}

// Run serves until ctx is done, then shuts down gracefully: no new
// connections, in-flight requests get ShutdownGrace to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	ln = newLimitListener(ln, s.cfg.MaxConnections, s.cfg.MaxConnectionsPerClient,
		s.refused.WithLabelValues("main"), s.open.WithLabelValues("main"))
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.Duration,
		ReadTimeout:       s.cfg.ReadTimeout.Duration,
		WriteTimeout:      s.cfg.WriteTimeout.Duration,
		IdleTimeout:       s.cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	scheme := "http"
	if s.cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		listeners[0] = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	addrs := [2]string{listeners[0].Addr().String()}
	if s.cfg.HealthListen != "" {
		hln, err := net.Listen("tcp", s.cfg.HealthListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s (health): %w", s.cfg.HealthListen, err)
		}
		hln = newLimitListener(hln, HealthMaxConnections, HealthMaxConnectionsPerClient,
			s.refused.WithLabelValues("health"), s.open.WithLabelValues("health"))
		hsrv := &http.Server{
			Handler:           s.serveMux(s.health),
			ReadHeaderTimeout: healthTimeout,
			ReadTimeout:       healthTimeout,
			WriteTimeout:      healthTimeout,
			IdleTimeout:       healthTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          srv.ErrorLog,
		}
		if srv.TLSConfig != nil {
			hsrv.TLSConfig = srv.TLSConfig
			hln = tls.NewListener(hln, srv.TLSConfig)
		}
		servers = append(servers, hsrv)
		listeners = append(listeners, hln)
		addrs[1] = hln.Addr().String()
		s.log.Info("serving health and metrics", "address", scheme+"://"+addrs[1])
	}
	s.log.Info("serving", "address", scheme+"://"+addrs[0])
	s.started <- addrs
	errc := make(chan error, len(servers))
	for i := range servers {
		go func() { errc <- servers[i].Serve(listeners[i]) }()
	}
	var runErr error
	pending := len(servers)
	select {
	case runErr = <-errc:
		pending--
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace.Duration)
	defer cancel()
	var wg sync.WaitGroup
	shutErrs := make([]error, len(servers))
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shutErrs[i] = servers[i].Shutdown(sctx)
		}()
	}
	wg.Wait()
	for range pending {
		if err := <-errc; runErr == nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	for _, err := range shutErrs {
		if err != nil {
			return fmt.Errorf("shutting down: %w", err)
		}
	}
	return nil
}
