// Package serve is the one HTTP server of `offkit serve`: every part
// (registry, rules and dashboards, later mirrors and debuginfod) is a handler
// mounted on it, and it adds what they all need: read, write, header and idle
// timeouts; a cap on connections and on request bodies; request logging;
// Prometheus metrics by route and status; /healthz and /readyz; optional TLS;
// graceful shutdown that lets in-flight downloads finish.
//
// It is read-only by construction: the parts register only GET and HEAD
// handlers, and any other method is answered by the part itself (the OCI
// registry answers 405 UNSUPPORTED) or by this package with 405.
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
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// Server is the HTTP server of a site.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	bytes   *prometheus.CounterVec
	flight  prometheus.Gauge
	mu      sync.Mutex
	checks  map[string]func() error
	started chan string
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
		reg:     prometheus.NewRegistry(),
		checks:  map[string]func() error{},
		started: make(chan string, 1),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_http_response_bytes_total", Help: "Response body bytes served, by route.",
		}, []string{"route"}),
		flight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offkit_http_in_flight_requests", Help: "Requests being served now.",
		}),
	}
	s.reg.MustRegister(s.reqs, s.bytes, s.flight, collectors.NewGoCollector())
	s.mux.Handle("GET /healthz", s.instrument("healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})))
	s.mux.Handle("GET /readyz", s.instrument("readyz", http.HandlerFunc(s.readyz)))
	s.mux.Handle("GET /metrics", s.instrument("metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
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
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP counts a request no part handles (404, 405) under the route
// "other", so that made-up paths never become label values.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.instrument("other", s.mux).ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
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

// codeLabel is the status code as a metrics label ("other" outside 100-599).
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom keeps sendfile for file bodies.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.flight.Inc()
		defer s.flight.Dec()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.reqs.WithLabelValues(route, methodLabel(r.Method), codeLabel(rec.code)).Inc()
		s.bytes.WithLabelValues(route).Add(float64(rec.bytes))
		s.log.Info("request", "route", route, "method", r.Method, "path", r.URL.Path, "status", rec.code,
			"bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

// Addr returns the address the server listens on once Run has started.
func (s *Server) Addr(ctx context.Context) (string, error) {
	select {
	case a := <-s.started:
		s.started <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run serves until ctx is done, then shuts down gracefully: no new
// connections, in-flight requests get ShutdownGrace to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	ln = netutil.LimitListener(ln, s.cfg.MaxConnections)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.Duration,
		ReadTimeout:       s.cfg.ReadTimeout.Duration,
		WriteTimeout:      s.cfg.WriteTimeout.Duration,
		IdleTimeout:       s.cfg.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if s.cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	s.log.Info("serving", "address", scheme+"://"+ln.Addr().String())
	s.started <- ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace.Duration)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
