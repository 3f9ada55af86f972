// Package mirrorserve is the feed-mirror part of `offkit serve`: it serves
// the Concelier and Excititor exports installed on a site the way the
// mirror runbook describes, with its cache headers, per-client budgets and
// per-domain authentication.
//
// Routes (GET and HEAD; any other method is 405):
//
//	/concelier/exports/index.json                                  max-age=60 (domains filtered to those served)
//	/concelier/exports/mirror/<domain>/manifest.json               max-age=300, immutable
//	/concelier/exports/mirror/<domain>/bundle.json                 max-age=300, immutable
//	/concelier/exports/mirror/<domain>/bundle.json.jws             max-age=300, immutable
//	/excititor/mirror/domains                                      max-age=60 (generated list)
//	/excititor/mirror/domains/<id>                                 max-age=60 (generated)
//	/excititor/mirror/domains/<id>/index, /excititor/mirror/<id>/index   max-age=60
//	/excititor/mirror/domains/<id>/exports/<exportKey>/<format>    max-age=300, immutable
//	/excititor/mirror/domains/<id>/exports/<exportKey>/<format>.jws
//
// The domains served are those exports.json records for the export whose
// files the generation holds; the Concelier index is served with its
// domains array filtered to them (announcedIndex), the Excititor domain
// list lists them, so what the site announces is what it serves.
//
// Every file is looked up in the generation's exports.json (written by the
// site at install) and opened through the generation's os.Root with the size
// it lists; its sha256 is the strong ETag, so If-None-Match gives 304 and
// Range works. A path segment that is not a plain name (`..`, an encoded
// slash, an empty segment) is 400 before anything is looked up.
//
// Budgets (Config.MaxIndexRequestsPerHour, Domain.MaxDownloadRequestsPerHour)
// are token buckets of golang.org/x/time/rate per client address (an IPv6
// client as its /64), part and budget; past them the answer is 429 with
// Retry-After in whole seconds. The table of budgets is bounded (MaxClients,
// least recently used forgotten first).
//
// A protected domain (requireAuthentication) takes Basic credentials
// checked against bcrypt htpasswd files, and Bearer or DPoP tokens checked
// by Tokens; a refusal is answered by authority.Refuse as on every other
// protected route of serve (401 with WWW-Authenticate: Bearer, and Basic
// when an htpasswd file applies; 403 insufficient_scope; 503 with
// Retry-After; never cached), the reason in the body; every answer of a
// protected route carries Vary: Authorization; each protected request
// writes one audit line.
package mirrorserve

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/gencache"
	"github.com/offkit/offkit/internal/httpstat"
	"github.com/offkit/offkit/internal/limit"
)

// Tokens checks Bearer/DPoP tokens on protected mirror routes; *authority.Guard implements it.
type Tokens interface {
	// Check decides on r for a route whose token needs scopes
	// (concelier.mirror.read / excititor.mirror.read).
	Check(r *http.Request, scopes []string) authority.Result
	// Remote is r's client address (X-Forwarded-For honoured only from trusted proxies).
	Remote(r *http.Request) netip.Addr
}

// Generations is the installed site as the mirror reads it (site.View).
type Generations interface {
	// OpenGeneration opens the generation being served; id names its
	// content (two opens with one id see the same files).
	OpenGeneration() (gen *os.Root, id string, err error)
}

// Folders is an optional ability of a Generations (site.View has it): the
// folder of the generation being served, found without opening anything.
// Generations are never changed once made, so one folder names one content:
// a request answered from memory (an index, a manifest, a signature) then
// costs one readlink instead of opening the generation.
type Folders interface {
	Generation() (dir string, err error)
}

// current is the generation a request is answered from.
type current struct {
	g   *generation
	dir string   // with Folders
	gen *os.Root // without: the opened generation
}

// open opens name of the generation (confined to it) when it is a regular
// file (openRegular).
func (c *current) open(name string) (*os.File, error) {
	if c.gen != nil {
		return openRegular(c.gen, name)
	}
	r, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return openRegular(r, name)
}

func (c *current) close() {
	if c.gen != nil {
		c.gen.Close()
	}
}

// current finds the generation being served and its build.
func (h *Handler) current() (*current, error) {
	if f, ok := h.src.(Folders); ok {
		dir, err := f.Generation()
		if err != nil {
			return nil, err
		}
		g, err := h.generation("dir:"+dir, func() (*os.Root, func(), error) {
			r, err := os.OpenRoot(dir)
			if err != nil {
				return nil, nil, err
			}
			return r, func() { r.Close() }, nil
		})
		if err != nil {
			return nil, err
		}
		return &current{g: g, dir: dir}, nil
	}
	gen, id, err := h.src.OpenGeneration()
	if err != nil {
		return nil, err
	}
	g, err := h.generation(id, func() (*os.Root, func(), error) { return gen, func() {}, nil })
	if err != nil {
		gen.Close()
		return nil, err
	}
	return &current{g: g, gen: gen}, nil
}

// Scopes a token needs, by part.
const (
	ConcelierScope = "concelier.mirror.read"
	ExcititorScope = "excititor.mirror.read"
)

// Cache-Control of index routes and of downloads.
const (
	IndexCacheControl    = "public, max-age=60"
	DownloadCacheControl = "public, max-age=300, immutable"
)

// BasicRealm is the realm of the Basic challenge.
const BasicRealm = "offkit mirror"

// MaxAuthorization bounds the Authorization header a protected route looks
// at; a longer one is refused without being parsed.
const MaxAuthorization = 16 << 10

// Prefixes are the paths the handler is mounted at.
var Prefixes = []string{"/concelier/", "/excititor/"}

// Options configure a Handler.
type Options struct {
	Config Config
	// Tokens checks Bearer and DPoP tokens; nil refuses them ("no Authority
	// configured").
	Tokens Tokens
	// Audit receives one line per protected request (nil: discarded).
	Audit *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Handler serves the mirror routes; it is a prometheus.Collector of its
// metrics.
type Handler struct {
	src    Generations
	cfg    Config
	tokens Tokens
	audit  *slog.Logger
	now    func() time.Time
	gens   *gencache.Cache[*generation]
	budget *budgets
	basic  *basicChecker
	// htpasswd files by part, then domain ("" for the part's own file).
	files map[string]map[string]*htpasswd

	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	age      *prometheus.Desc
	clients  *prometheus.Desc
}

// New returns the mirror handler of the site src. It reads the htpasswd
// files now; an unreadable or non-bcrypt file is an error.
func New(src Generations, o Options) (*Handler, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Audit == nil {
		o.Audit = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		src: src, cfg: o.Config, tokens: o.Tokens, audit: o.Audit, now: o.Now,
		gens:   gencache.New[*generation](cachedGenerations, retryBuild),
		budget: newBudgets(o.Config.MaxClients, o.Now),
		basic:  newBasicChecker(o.Now),
		files:  map[string]map[string]*htpasswd{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_mirror_requests_total",
			Help: "Mirror requests by part (kind), domain (\"\" for the index routes, \"other\" for none served) and status code (304: not modified, 429: over budget).",
		}, []string{"kind", "domain", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_mirror_response_bytes_total", Help: "Mirror response body bytes by part (kind) and domain.",
		}, []string{"kind", "domain"}),
		age: prometheus.NewDesc("offkit_mirror_export_age_seconds",
			"Age of the served export of each domain (from its created or generatedAt time); alert when over 48 hours.",
			[]string{"kind", "domain"}, nil),
		clients: prometheus.NewDesc("offkit_mirror_rate_limit_budgets",
			"Client budgets held by the mirror's rate limiter (bounded by mirror.maxClients).", nil, nil),
	}
	for kind, p := range map[string]Part{Concelier: o.Config.Concelier, Excititor: o.Config.Excititor} {
		h.files[kind] = map[string]*htpasswd{}
		if p.Htpasswd != "" {
			f, err := loadHtpasswd(p.Htpasswd)
			if err != nil {
				return nil, fmt.Errorf("mirror.%s.htpasswd: %w", kind, err)
			}
			h.files[kind][""] = f
		}
		for i, d := range p.Domains {
			if d.Htpasswd == "" {
				continue
			}
			f, err := loadHtpasswd(d.Htpasswd)
			if err != nil {
				return nil, fmt.Errorf("mirror.%s.domains[%d].htpasswd: %w", kind, i, err)
			}
			h.files[kind][d.ID] = f
		}
	}
	return h, nil
}

// route is what a request asks for.
type route struct {
	kind   string
	domain string // "" for the part's index routes
	index  bool   // an index route (60 s cache, the index budget)
	// What is served: a file of the export by its path below <exportId>/mirror/,
	// or a generated document, or an Excititor download.
	file     string
	list     bool   // /excititor/mirror/domains
	detail   bool   // /excititor/mirror/domains/<id>
	download string // exportKey/format[.jws]
}

// maxQuotedSegment bounds what a 400 quotes of the segment at fault (the
// longest valid name is 128 bytes).
const maxQuotedSegment = 160

// badRequest says why a path is refused with 400.
type badRequest string

// parse maps a request path to a route; ok is false for a path that names
// nothing (404), err for one with a segment that is not a plain name (400).
func parse(escaped string) (rt route, ok bool, bad badRequest) {
	var rest string
	switch {
	case strings.HasPrefix(escaped, "/concelier/exports/"):
		rt.kind, rest = Concelier, strings.TrimPrefix(escaped, "/concelier/exports/")
	case strings.HasPrefix(escaped, "/excititor/mirror/"):
		rt.kind, rest = Excititor, strings.TrimPrefix(escaped, "/excititor/mirror/")
	default:
		return rt, false, ""
	}
	raw := strings.Split(rest, "/")
	if rest == "" || len(raw) > 6 {
		return rt, false, ""
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil || !validName(u) {
			return rt, false, badRequest(fmt.Sprintf("path segment %q is not a valid name", limit.Clip(s, maxQuotedSegment)))
		}
		segs[i] = u
	}
	if rt.kind == Concelier {
		switch {
		case len(segs) == 1 && segs[0] == "index.json":
			rt.index, rt.file = true, "index.json"
			return rt, true, ""
		case len(segs) == 3 && segs[0] == "mirror":
			switch segs[2] {
			case "manifest.json", "bundle.json", "bundle.json.jws":
				rt.domain, rt.file = segs[1], segs[1]+"/"+segs[2]
				return rt, true, ""
			}
		}
		return rt, false, ""
	}
	switch {
	case len(segs) == 1 && segs[0] == "domains":
		rt.index, rt.list = true, true
	case len(segs) == 2 && segs[0] == "domains":
		rt.index, rt.detail, rt.domain = true, true, segs[1]
	case len(segs) == 3 && segs[0] == "domains" && segs[2] == "index":
		rt.index, rt.domain, rt.file = true, segs[1], segs[1]+"/index.json"
	case len(segs) == 2 && segs[1] == "index":
		rt.index, rt.domain, rt.file = true, segs[0], segs[0]+"/index.json"
	case len(segs) == 5 && segs[0] == "domains" && segs[2] == "exports":
		rt.domain, rt.download = segs[1], segs[3]+"/"+segs[4]
	default:
		return rt, false, ""
	}
	return rt, true, ""
}

func (h *Handler) part(kind string) Part {
	if kind == Concelier {
		return h.cfg.Concelier
	}
	return h.cfg.Excititor
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rt, ok, bad := parse(r.URL.EscapedPath())
	kind := rt.kind
	if kind == "" {
		kind = "other"
	}
	rec := &httpstat.Writer{ResponseWriter: w}
	label := "other"
	defer func() {
		h.requests.WithLabelValues(kind, label, httpstat.CodeLabel(rec.Status())).Inc()
		h.bytes.WithLabelValues(kind, label).Add(float64(rec.Bytes))
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.Header().Set("Allow", "GET, HEAD")
		http.Error(rec, "read-only", http.StatusMethodNotAllowed)
		return
	}
	if bad != "" {
		http.Error(rec, string(bad), http.StatusBadRequest)
		return
	}
	if !ok || !h.part(rt.kind).enabled() {
		http.NotFound(rec, r)
		return
	}
	cur, err := h.current()
	if err != nil {
		http.Error(rec, "mirror exports unavailable", http.StatusServiceUnavailable)
		return
	}
	defer cur.close()
	g := cur.g
	p := g.parts[rt.kind]
	switch {
	case rt.domain == "":
		label = ""
	case p != nil && p.domains[rt.domain]:
		label = rt.domain
	}
	cfg := h.part(rt.kind)
	remote := h.remote(r)
	protected := cfg.RequireAuthentication
	if rt.domain != "" {
		protected = cfg.requireAuth(rt.domain)
	}
	var res authority.Result
	if protected {
		// The answer depends on the credentials: a shared cache (the
		// runbook's CDN, which the public directive lets store it) keys
		// it by them rather than serve it to a client without any.
		rec.Header().Add("Vary", "Authorization")
		defer func() {
			authority.NewAuditRecord(r.URL.Path, rec.Status(), res, remote).Log(r.Context(), h.audit)
		}()
		var basicOn bool
		res, basicOn = h.authorize(r, rt, remote)
		if !res.Allowed() {
			refuse(rec, r, res, basicOn)
			return
		}
	}
	budget, scope := cfg.MaxIndexRequestsPerHour, "index"
	if !rt.index {
		budget, scope = cfg.downloadBudget(rt.domain), "download:"+rt.domain
	}
	if ok, wait := h.budget.allow(remote, rt.kind, scope, budget); !ok {
		rec.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		http.Error(rec, "request budget spent: retry later", http.StatusTooManyRequests)
		return
	}
	if p == nil || p.exportID == "" {
		msg := "no " + rt.kind + " export installed"
		if p != nil && p.missing != "" {
			msg = p.missing
		}
		http.Error(rec, msg, http.StatusNotFound)
		return
	}
	if rt.domain != "" && !p.domains[rt.domain] {
		http.Error(rec, "domain "+rt.domain+" not served", http.StatusNotFound)
		return
	}
	switch {
	case rt.list:
		serveDoc(rec, r, p.list)
	case rt.detail:
		serveDoc(rec, r, p.dom[rt.domain])
	case rt.download != "":
		f, ok := p.downloads[rt.domain][rt.download]
		if !ok {
			http.Error(rec, "export "+rt.download+" not in domain "+rt.domain, http.StatusNotFound)
			return
		}
		ct := formatContentType(path.Base(rt.download))
		serveFile(rec, r, cur, f, DownloadCacheControl, ct, strings.HasSuffix(rt.download, ".jws"))
	default:
		f, ok := p.files[rt.file]
		if !ok {
			http.Error(rec, path.Base(rt.file)+" not in the served export", http.StatusNotFound)
			return
		}
		cc := DownloadCacheControl
		if rt.index {
			cc = IndexCacheControl
		}
		serveFile(rec, r, cur, f, cc, contentType(rt.file), strings.HasSuffix(rt.file, ".jws"))
	}
}

// remote is the client address the budgets and the audit count.
func (h *Handler) remote(r *http.Request) netip.Addr {
	if h.tokens != nil {
		return h.tokens.Remote(r)
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, _ := netip.ParseAddr(r.RemoteAddr)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// basicFiles are the htpasswd files whose users may read rt: the part's
// and the domain's; for the part's index routes, every file of the part.
func (h *Handler) basicFiles(rt route) []*htpasswd {
	files := h.files[rt.kind]
	var out []*htpasswd
	if f := files[""]; f != nil {
		out = append(out, f)
	}
	if rt.domain != "" {
		if f := files[rt.domain]; f != nil {
			out = append(out, f)
		}
		return out
	}
	for id, f := range files {
		if id != "" {
			out = append(out, f)
		}
	}
	return out
}

func deny(o authority.Outcome, reason string) authority.Result {
	return authority.Result{Outcome: o, Status: http.StatusUnauthorized, Reason: reason}
}

// authorize decides on a request to a protected route; basicOn reports
// whether Basic is enabled for it (for the challenge).
func (h *Handler) authorize(r *http.Request, rt route, remote netip.Addr) (authority.Result, bool) {
	files := h.basicFiles(rt)
	basicOn := len(files) > 0
	scopes := []string{ConcelierScope}
	if rt.kind == Excititor {
		scopes = []string{ExcititorScope}
	}
	vals := r.Header.Values("Authorization")
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	switch {
	case total > MaxAuthorization:
		return deny(authority.BadToken, "Authorization header too long"), basicOn
	case len(vals) > 1:
		return deny(authority.BadToken, "more than one Authorization header"), basicOn
	case len(vals) == 0:
		if h.tokens == nil {
			return deny(authority.NoToken, "authentication required"), basicOn
		}
		return h.tokens.Check(r, scopes), basicOn
	}
	scheme, _, _ := strings.Cut(vals[0], " ")
	switch strings.ToLower(scheme) {
	case "basic":
		if !basicOn {
			return deny(authority.BadToken, "Basic authentication is not enabled for this route"), false
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			return deny(authority.BadToken, "malformed Basic credentials (want base64 of user:password)"), basicOn
		}
		if !h.basic.check(files, user, pass) {
			return deny(authority.BadToken, "wrong user or password"), basicOn
		}
		return authority.Result{Outcome: authority.OK, Status: http.StatusOK, Reason: "basic credentials accepted", Subject: user}, basicOn
	case "bearer", "dpop":
		if h.tokens == nil {
			return deny(authority.BadToken, "no Authority configured"), basicOn
		}
		return h.tokens.Check(r, scopes), basicOn
	}
	return deny(authority.BadToken, "unsupported authorization scheme"), basicOn
}

// refuse answers a refused request as the rest of `offkit serve` does
// (authority.Refuse: Bearer challenge with error= once a token was refused,
// insufficient_scope on 403, Retry-After on 503, no-store), offering Basic
// beside Bearer on 401 when an htpasswd file applies.
func refuse(w http.ResponseWriter, r *http.Request, res authority.Result, basicOn bool) {
	// RFC 6750 §3.1: a request that sent no Bearer token (none, or Basic
	// credentials, or another scheme) gets a Bearer challenge without an
	// error code; the body still says what was wrong.
	if res.Status == http.StatusUnauthorized && !sentBearer(r) {
		res.Outcome = authority.NoToken
	}
	if basicOn {
		authority.Refuse(w, res, `Basic realm="`+BasicRealm+`"`)
		return
	}
	authority.Refuse(w, res)
}

// sentBearer reports whether r carries a token of the Bearer or DPoP scheme.
func sentBearer(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch strings.ToLower(scheme) {
	case "bearer", "dpop":
		return true
	}
	return false
}

func serveDoc(w http.ResponseWriter, r *http.Request, d doc) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", d.etag)
	w.Header().Set("Cache-Control", IndexCacheControl)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(d.body))
}

// serveFile serves f of the generation open at gen: from memory when it is
// small (read and checked once per generation), else the regular file of
// the size exports.json lists, or 503.
func serveFile(w http.ResponseWriter, r *http.Request, cur *current, f file, cacheControl, ct string, sig bool) {
	if f.broken {
		http.Error(w, "file unavailable", http.StatusServiceUnavailable)
		return
	}
	if f.body != nil {
		if sig && len(f.body) > 0 {
			ct = jwsContentType(f.body[0])
		}
		w.Header().Set("ETag", f.etag())
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("Content-Type", ct)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
		return
	}
	fh, err := cur.open(f.path)
	if err != nil {
		http.Error(w, "file unavailable", http.StatusServiceUnavailable)
		return
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() != f.size {
		http.Error(w, "file unavailable", http.StatusServiceUnavailable)
		return
	}
	if sig {
		var b [1]byte
		if _, err := fh.ReadAt(b[:], 0); err == nil || err == io.EOF {
			ct = jwsContentType(b[0])
		}
	}
	w.Header().Set("ETag", f.etag())
	w.Header().Set("Cache-Control", cacheControl)
	w.Header().Set("Content-Type", ct)
	http.ServeContent(w, r, "", time.Time{}, fh)
}

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	h.requests.Describe(ch)
	h.bytes.Describe(ch)
	ch <- h.age
	ch <- h.clients
}

// Collect implements prometheus.Collector: the counters, the size of the
// budget table, and the age of each served domain's export now.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	h.requests.Collect(ch)
	h.bytes.Collect(ch)
	ch <- prometheus.MustNewConstMetric(h.clients, prometheus.GaugeValue, float64(h.budget.len()))
	for _, a := range h.Ages() {
		ch <- prometheus.MustNewConstMetric(h.age, prometheus.GaugeValue, a.Age.Seconds(), a.Kind, a.Domain)
	}
}

// Age is how old the served export of one domain is.
type Age struct {
	Kind, Domain, ExportID string
	Age                    time.Duration
}

// Ages lists the served domains with the age of their export (none when
// nothing is installed or the exports cannot be read).
func (h *Handler) Ages() []Age {
	cur, err := h.current()
	if err != nil {
		return nil
	}
	defer cur.close()
	g := cur.g
	now := h.now()
	var out []Age
	for _, kind := range []string{Concelier, Excititor} {
		p := g.parts[kind]
		if p == nil || p.exportID == "" || p.age.IsZero() || !h.part(kind).enabled() {
			continue
		}
		for _, d := range p.ids {
			out = append(out, Age{Kind: kind, Domain: d, ExportID: p.exportID, Age: now.Sub(p.age)})
		}
	}
	return out
}
