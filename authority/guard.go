package authority

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/httpstat"
)

// Timing of a Guard (defaults of GuardConfig).
const (
	// DefaultReloadInterval: how often the guard looks at meta.json for a
	// snapshot another process wrote (an `offkit authority refresh`, an
	// install that imported a kit's snapshot).
	DefaultReloadInterval = 2 * time.Second
	// DefaultMinRefreshInterval: the background refresher never runs two
	// refreshes closer than this, whatever the lifetime says (a lifetime of
	// 0, no-cache, would otherwise refresh without pause).
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultRetryAfterFailure: after a background refresh that failed
	// (its whole retry ladder), the next one starts this much later.
	DefaultRetryAfterFailure = time.Minute
	// DefaultKidRefreshTimeout bounds the refresh an unknown kid starts
	// while its request waits.
	DefaultKidRefreshTimeout = 10 * time.Second
)

// GuardConfig is what a Guard needs besides the options and the site root.
// Zero fields take the defaults.
type GuardConfig struct {
	// Client fetches from the issuer (nil: as Refresher).
	Client *http.Client
	// Now is the clock (nil: time.Now); Sleep waits (nil: a timer that ctx
	// cancels). Tests inject both.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives refresh outcomes (nil: discarded).
	Log *slog.Logger
	// OnRefresh, when set, is told every refresh the guard ran.
	OnRefresh func(rep Report, err error)
	// ReloadInterval, MinRefreshInterval, RetryAfterFailure and
	// KidRefreshTimeout: see the Default constants.
	ReloadInterval, MinRefreshInterval, RetryAfterFailure, KidRefreshTimeout time.Duration
	// KidRefreshInterval is the RefreshLimiter's interval (0: one minute).
	KidRefreshInterval time.Duration
}

// Guard checks the tokens of `offkit serve`'s protected routes against the
// cached metadata of one issuer. It holds a Validator for the current
// snapshot and swaps it atomically when the snapshot changes: after a
// refresh it ran, or when it finds meta.json changed on disk (another
// process refreshed or imported a snapshot; looked at every ReloadInterval,
// on the next check). A token with an unknown kid starts at most one
// refresh per KidRefreshInterval (one minute) and is checked once more.
// Run refreshes in the background at the cache lifetime. Beyond
// lifetime + tolerance, tokens get 503 and Ready fails, naming the issuer;
// a later refresh (of this process or another) recovers without restart.
//
// *Guard implements the mirror's Tokens hook (Check, Remote) and is a
// prometheus.Collector.
type Guard struct {
	opts    Options
	root    string
	dir     string
	cfg     GuardConfig
	proxies []netip.Prefix
	limiter *RefreshLimiter
	replay  *ReplayCache

	v atomic.Pointer[Validator] // nil: no usable snapshot
	// lastLook is when maybeReload last looked at meta.json (nil: never);
	// an atomic, so that a request's check takes no lock.
	lastLook atomic.Pointer[time.Time]

	mu      sync.Mutex // guards the fields below
	loadErr error      // why v is nil, or why the last reload failed
	stamp   os.FileInfo

	refreshMu sync.Mutex // one refresh at a time

	requests     *prometheus.CounterVec
	attempts     prometheus.Counter
	failures     prometheus.Counter
	ageDesc      *prometheus.Desc
	leftDesc     *prometheus.Desc
	expiredDesc  *prometheus.Desc
	snapshotDesc *prometheus.Desc
}

// NewGuard makes a guard for o (validated; o.Enabled is not looked at) over
// the cache of o.Issuer under the site root, and loads the cached snapshot
// if there is one. A missing or unreadable cache is no error: protected
// routes answer 503 and Ready fails until a refresh or an import brings one.
func NewGuard(o Options, root string, cfg GuardConfig) (*Guard, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir, err := Dir(root, o.Issuer)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ReloadInterval, DefaultReloadInterval)
	def(&cfg.MinRefreshInterval, DefaultMinRefreshInterval)
	def(&cfg.RetryAfterFailure, DefaultRetryAfterFailure)
	def(&cfg.KidRefreshTimeout, DefaultKidRefreshTimeout)
	proxies, _ := parsePrefixes(o.TrustedProxies)
	labels := prometheus.Labels{"issuer": o.Issuer}
	g := &Guard{
		opts: o, root: root, dir: dir, cfg: cfg, proxies: proxies,
		limiter: &RefreshLimiter{Interval: cfg.KidRefreshInterval, Now: cfg.Now},
		replay:  NewReplayCache(2*o.Skew(), DefaultReplayEntries),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_authority_requests_total", Help: "Token checks on protected routes, by outcome.", ConstLabels: labels,
		}, []string{"outcome"}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offkit_authority_refresh_attempts_total", Help: "Requests to the issuer's metadata made by serve's refreshes (each try of the retry ladder).", ConstLabels: labels,
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offkit_authority_refresh_failures_total", Help: "Refreshes by serve that got no new metadata (issuer unreachable after the ladder, or a refused document).", ConstLabels: labels,
		}),
		ageDesc:      prometheus.NewDesc("offkit_authority_cache_age_seconds", "Age of the cached Authority metadata (now - fetchedAt).", nil, labels),
		leftDesc:     prometheus.NewDesc("offkit_authority_validity_remaining_seconds", "Seconds until the cached metadata expires (lifetime + offline tolerance); 0 once expired.", nil, labels),
		expiredDesc:  prometheus.NewDesc("offkit_authority_metadata_expired", "1 while the cached metadata is past its lifetime and tolerance, or missing.", nil, labels),
		snapshotDesc: prometheus.NewDesc("offkit_authority_metadata_fetched_timestamp_seconds", "fetchedAt of the cached metadata (Unix time).", nil, labels),
	}
	for _, oc := range Outcomes() {
		g.requests.WithLabelValues(oc.String())
	}
	g.reload(true, nil)
	return g, nil
}

// Issuer is the issuer the guard checks tokens for.
func (g *Guard) Issuer() string { return g.opts.Issuer }

// Options are the guard's options.
func (g *Guard) Options() Options { return g.opts }

// Dir is the cache folder the guard reads.
func (g *Guard) Dir() string { return g.dir }

// Check decides on r for a route whose token needs scopes (nil:
// Options.RequiredScopes): Validator.Check on the request as the client
// addressed it (scheme from TLS, Host, path), its Authorization and DPoP
// headers, TLS client certificates and client address (Remote). An unknown
// kid refreshes the metadata (at most once a minute, without the retry
// ladder, never waiting for a refresh already running) and checks again
// once.
// Every decision is counted by outcome.
func (g *Guard) Check(r *http.Request, scopes []string) Result {
	res := g.check(r, scopes)
	g.requests.WithLabelValues(res.Outcome.String()).Inc()
	return res
}

func (g *Guard) check(r *http.Request, scopes []string) Result {
	g.maybeReload()
	v := g.v.Load()
	if v == nil {
		return g.noMetadata(r)
	}
	res := v.Check(g.request(v, r, scopes))
	if !errors.Is(res.Err, ErrUnknownKeyID) {
		return res
	}
	if g.limiter.Allow() {
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.KidRefreshTimeout)
		defer cancel()
		g.refresh(ctx, false)
	} else {
		g.maybeReload()
	}
	if nv := g.v.Load(); nv != nil && nv != v {
		return nv.Check(g.request(nv, r, scopes))
	}
	return res
}

// request is Validator.RequestFrom; behind a trusted proxy (the peer is
// one of trustedProxies) the URL's scheme and host are the proxy's
// X-Forwarded-Proto and X-Forwarded-Host, as the client addressed them
// (DPoP's htu is compared with that URL).
func (g *Guard) request(v *Validator, r *http.Request, scopes []string) Request {
	req := v.RequestFrom(r, scopes)
	if len(g.proxies) == 0 || !inPrefixes(parseHostAddr(r.RemoteAddr), g.proxies) {
		return req
	}
	u := *req.URL
	if p := lastHop(r.Header.Values("X-Forwarded-Proto")); p == "http" || p == "https" {
		u.Scheme = p
	}
	if h := lastHop(r.Header.Values("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/?#@ ") {
		u.Host = h
	}
	req.URL = &u
	return req
}

// lastHop is the right-most value of a comma-separated forwarding header
// (the one the trusted proxy added), lowercased for the scheme's sake.
func lastHop(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	parts := strings.Split(vals[len(vals)-1], ",")
	return strings.ToLower(strings.TrimSpace(parts[len(parts)-1]))
}

// noMetadata decides without a snapshot: a request without a token may
// still pass by bypass or anonymous fallback (no key is needed for that);
// one with a token gets 503.
func (g *Guard) noMetadata(r *http.Request) Result {
	hasToken := false
	for _, a := range r.Header.Values("Authorization") {
		hasToken = hasToken || strings.TrimSpace(a) != ""
	}
	switch Decide(g.Remote(r), hasToken, g.opts) {
	case BypassAccess:
		res := result(Bypass, "no token, remote address in bypassNetworks", nil)
		res.Bypass = true
		return res
	case AnonymousAccess:
		return result(Anonymous, "no token, allowAnonymousFallback is on", nil)
	}
	if !hasToken {
		return result(NoToken, "no token: send Authorization: Bearer <token>", nil)
	}
	return result(ExpiredMetadata, g.unavailable().Error(), ErrMetadataExpired)
}

// Remote is r's client address: the peer, or X-Forwarded-For's right-most
// untrusted hop when the peer is one of trustedProxies (ClientAddr).
func (g *Guard) Remote(r *http.Request) netip.Addr {
	return ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), g.proxies)
}

// Ready is the readiness check of serve's /readyz: an error naming the
// issuer while there is no usable snapshot or it is past its lifetime and
// tolerance.
func (g *Guard) Ready() error {
	g.maybeReload()
	v := g.v.Load()
	if v == nil {
		return g.unavailable()
	}
	if st := v.Status(); st.State == Expired {
		return fmt.Errorf("authority metadata of %s expired: %s", g.opts.Issuer, st.Reason)
	}
	return nil
}

// Status is the current snapshot's meta.json and state; ok is false
// without a snapshot.
func (g *Guard) Status() (Meta, Status, bool) {
	g.maybeReload()
	v := g.v.Load()
	if v == nil {
		return Meta{}, Status{}, false
	}
	return v.meta, v.Status(), true
}

func (g *Guard) unavailable() error {
	g.mu.Lock()
	err := g.loadErr
	g.mu.Unlock()
	if err == nil {
		err = errors.New("not loaded")
	}
	return fmt.Errorf("no usable authority metadata of %s in %s (run `offkit authority refresh` or install a kit carrying a snapshot): %w", g.opts.Issuer, g.dir, err)
}

// maybeReload looks at meta.json at most once per ReloadInterval and
// reloads when it changed.
func (g *Guard) maybeReload() {
	now := g.cfg.Now()
	last := g.lastLook.Load()
	if last != nil && now.Sub(*last) < g.cfg.ReloadInterval && !now.Before(*last) {
		return
	}
	// Of callers due at once, the one that moves lastLook looks.
	if g.lastLook.CompareAndSwap(last, &now) {
		g.reload(false, nil)
	}
}

// Reload re-reads the cache now if meta.json changed.
func (g *Guard) Reload() { g.reload(false, nil) }

// reload swaps in the snapshot on disk when meta.json is not the file it
// last loaded (or always, with force). A cache that does not load keeps
// the current validator (a half-written or damaged cache never replaces a
// good one) unless there is none. parsed is the JWKS a refresh of this
// guard just wrote, with its keys (nil: none): when the cache holds those
// bytes, the validator takes its keys rather than parsing them again.
func (g *Guard) reload(force bool, parsed *parsedJWKS) {
	fi, err := os.Stat(filepath.Join(g.dir, MetaFile))
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil && !force && g.stamp != nil && os.SameFile(fi, g.stamp) &&
		fi.ModTime().Equal(g.stamp.ModTime()) && fi.Size() == g.stamp.Size() {
		return
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w", errdef.ErrNotFound)
		}
		if g.v.Load() == nil {
			g.loadErr = err
		}
		return
	}
	md, err := Load(g.dir)
	if err == nil && md.Meta.Issuer != g.opts.Issuer {
		err = fmt.Errorf("the cache holds issuer %q: %w", md.Meta.Issuer, errdef.ErrInvalid)
	}
	var v *Validator
	if err == nil {
		v, err = newValidator(g.opts, md, parsed, g.cfg.Now, g.replay)
	}
	if err != nil {
		g.cfg.Log.Warn("authority cache does not load; keeping the metadata in use", "issuer", g.opts.Issuer, "dir", g.dir, "error", err)
		if g.v.Load() == nil {
			g.loadErr = err
		}
		return
	}
	if old := g.v.Load(); old != nil && md.Meta.FetchedAt.Before(old.meta.FetchedAt) &&
		(md.Meta.DiscoverySHA256 != old.meta.DiscoverySHA256 || md.Meta.JWKSSHA256 != old.meta.JWKSSHA256) {
		// Never roll the keys back to an older snapshot; look again when
		// meta.json changes.
		g.stamp = fi
		return
	}
	g.stamp, g.loadErr = fi, nil
	g.v.Store(v)
}

// Refresh fetches the metadata now (Refresher, with the retry ladder),
// then swaps in what the cache holds. Refreshes are serialised; the error
// is the Refresher's.
func (g *Guard) Refresh(ctx context.Context) (Report, error) { return g.refresh(ctx, true) }

// errRefreshBusy: a refresh for an unknown kid found another running.
var errRefreshBusy = errors.New("a refresh is already running")

func (g *Guard) refresh(ctx context.Context, ladder bool) (Report, error) {
	if ladder {
		g.refreshMu.Lock()
	} else if !g.refreshMu.TryLock() {
		// A request never waits for the background refresher's ladder:
		// what it brings is swapped in for the next requests.
		return Report{}, errRefreshBusy
	}
	defer g.refreshMu.Unlock()
	o := g.opts
	if !ladder {
		f := false
		o.Resilience.EnableRetries = &f
	}
	// No site lock: the cache's files are written atomically and read as
	// a matching pair (Load), so a refresh here and one by `offkit
	// authority refresh` at once both leave a whole, fresh snapshot.
	r := &Refresher{Options: o, Root: g.root, Client: g.cfg.Client, Now: g.cfg.Now, Sleep: g.cfg.Sleep}
	rep, err := r.Refresh(ctx)
	if g.cfg.OnRefresh != nil {
		g.cfg.OnRefresh(rep, err)
	}
	g.attempts.Add(float64(rep.Attempts))
	switch {
	case err != nil:
		g.failures.Inc()
		g.cfg.Log.Warn("authority refresh failed", "issuer", o.Issuer, "attempts", rep.Attempts, "error", err)
	case rep.FellBack:
		g.failures.Inc()
		g.cfg.Log.Warn("authority issuer unreachable; keeping the cached metadata", "issuer", o.Issuer, "attempts", rep.Attempts,
			"error", rep.FetchErr, "state", rep.Status.State.String(), "validUntil", rep.Status.ValidUntil.UTC().Format(time.RFC3339))
	default:
		g.cfg.Log.Info("authority metadata refreshed", "issuer", o.Issuer, "revalidated", rep.Revalidated, "keyIds", rep.KeyIDs,
			"fetchedAt", rep.Meta.FetchedAt.UTC().Format(time.RFC3339))
	}
	g.reload(false, rep.parsed)
	return rep, err
}

// NextRefresh is how long the background refresher waits before its next
// refresh: until the snapshot's lifetime ends (at least
// MinRefreshInterval), RetryAfterFailure after a failed refresh, at once
// without a snapshot.
func (g *Guard) nextRefresh(failed bool) time.Duration {
	if failed {
		return g.cfg.RetryAfterFailure
	}
	v := g.v.Load()
	if v == nil {
		return 0
	}
	d := v.meta.FetchedAt.Add(v.meta.Lifetime()).Sub(g.cfg.Now())
	return max(d, g.cfg.MinRefreshInterval)
}

// Run is the background refresher: it refreshes when the snapshot's
// lifetime ends (with the retry ladder; failures are logged and counted,
// and retried RetryAfterFailure later), and returns when ctx is done. A
// snapshot another process wrote meanwhile moves the next refresh.
func (g *Guard) Run(ctx context.Context) {
	failed := false
	for {
		g.maybeReload()
		wait := g.nextRefresh(failed)
		if wait > 0 {
			if err := g.cfg.Sleep(ctx, wait); err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		g.Reload()
		if !failed {
			if v := g.v.Load(); v != nil && g.cfg.Now().Before(v.meta.FetchedAt.Add(v.meta.Lifetime())) {
				continue // another process refreshed meanwhile
			}
		}
		rep, err := g.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		// A refresh that left no usable snapshot (one the cache would not
		// give back) counts as failed: no tight loop against the issuer.
		failed = err != nil || rep.FellBack || g.v.Load() == nil
	}
}

// Describe implements prometheus.Collector.
func (g *Guard) Describe(ch chan<- *prometheus.Desc) {
	g.requests.Describe(ch)
	g.attempts.Describe(ch)
	g.failures.Describe(ch)
	ch <- g.ageDesc
	ch <- g.leftDesc
	ch <- g.expiredDesc
	ch <- g.snapshotDesc
}

// Collect implements prometheus.Collector.
func (g *Guard) Collect(ch chan<- prometheus.Metric) {
	g.requests.Collect(ch)
	g.attempts.Collect(ch)
	g.failures.Collect(ch)
	meta, st, ok := g.Status()
	expired := 1.0
	if ok {
		if st.State != Expired {
			expired = 0
		}
		ch <- prometheus.MustNewConstMetric(g.ageDesc, prometheus.GaugeValue, max(st.Age.Seconds(), 0))
		ch <- prometheus.MustNewConstMetric(g.leftDesc, prometheus.GaugeValue, st.Remaining.Seconds())
		ch <- prometheus.MustNewConstMetric(g.snapshotDesc, prometheus.GaugeValue, float64(meta.FetchedAt.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(g.expiredDesc, prometheus.GaugeValue, expired)
}

// Middleware protects a route with g: a refused request gets the result's
// status and reason (text/plain), with `WWW-Authenticate: Bearer` on 401
// (error="invalid_token" when a token was sent and refused) and
// error="insufficient_scope" on a 403 for scopes; a 503 carries
// Retry-After. Every request, refused or not, is one audit line on
// auditLog with the final status the handler answered. scopes are the
// route's required scopes (nil: Options.RequiredScopes); a nil auditLog
// writes none.
func Middleware(g *Guard, route string, scopes []string, auditLog *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res := g.Check(r, scopes)
			remote := g.Remote(r)
			if !res.Allowed() {
				Refuse(w, res)
				if auditLog != nil {
					NewAuditRecord(route, res.Status, res, remote).Log(r.Context(), auditLog)
				}
				return
			}
			sw := &httpstat.Writer{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			if auditLog != nil {
				NewAuditRecord(route, sw.Status(), res, remote).Log(r.Context(), auditLog)
			}
		})
	}
}

// Refuse answers a refused request: res.Status (401 when it is no error
// status), the reason as a text/plain body (the status text when empty),
// WWW-Authenticate on 401 and 403 (RFC 6750), Retry-After on 503, and
// Cache-Control: no-store, so that no cache keeps a refusal. challenges are
// further WWW-Authenticate challenges a 401 offers after Bearer's (the
// mirror's Basic).
func Refuse(w http.ResponseWriter, res Result, challenges ...string) {
	code := res.Status
	if code < 400 || code > 599 {
		code = http.StatusUnauthorized
	}
	reason := res.Reason
	if reason == "" {
		reason = http.StatusText(code)
	}
	h := w.Header()
	switch code {
	case http.StatusUnauthorized:
		if res.Outcome == NoToken {
			h.Set("WWW-Authenticate", `Bearer realm="offkit"`)
		} else {
			h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="offkit", error="invalid_token", error_description=%q`, headerSafe(reason)))
		}
		for _, c := range challenges {
			h.Add("WWW-Authenticate", c)
		}
	case http.StatusForbidden:
		if res.Outcome == Scope {
			h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="offkit", error="insufficient_scope", error_description=%q`, headerSafe(reason)))
		}
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "60")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, reason)
}

// headerSafe keeps printable ASCII other than '"' and '\\' (a reason may
// quote a claim a client chose).
func headerSafe(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
