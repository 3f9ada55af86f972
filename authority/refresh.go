package authority

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// MaxCacheLifetime caps the lifetime an issuer announces (max-age), so a
// misconfigured issuer cannot make one snapshot fresh for years.
const MaxCacheLifetime = 24 * time.Hour

// DiscoveryPath is where the discovery document lives under the issuer.
const DiscoveryPath = "/.well-known/openid-configuration"

// ErrMetadataExpired: cached metadata is past its lifetime and the offline
// tolerance. It matches errdef.ErrExpired (exit 9) with errors.Is.
var ErrMetadataExpired error = metadataExpired{}

type metadataExpired struct{}

func (metadataExpired) Error() string        { return "authority metadata expired" }
func (metadataExpired) Is(target error) bool { return target == errdef.ErrExpired }

// ErrUnreachable: every try to reach the issuer failed (network error, 5xx,
// 408, 429).
var ErrUnreachable = errors.New("issuer unreachable")

// Refresher fetches an issuer's metadata into the cache.
type Refresher struct {
	Options Options
	// Root is the site root; the cache is Dir(Root, Options.Issuer).
	Root string
	// Client makes the requests (nil: a client with a 30 s timeout). Its
	// redirects are checked like jwks_uri (https, loopback http if allowed).
	Client *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Sleep waits between tries (nil: a timer that ctx cancels).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Report says what a refresh did.
type Report struct {
	Issuer string
	Dir    string
	// Attempts is the number of tries; Waited the delays slept between them.
	Attempts int
	Waited   []time.Duration
	// Fetched: new documents were written. Revalidated: the issuer answered
	// 304 to both requests and only fetchedAt moved.
	Fetched, Revalidated bool
	// FellBack: the issuer could not be reached and the cached copy, still
	// within its lifetime plus tolerance, is kept.
	FellBack bool
	// FetchErr is the last try's error, when the refresh did not fetch.
	FetchErr error
	// Meta and Status describe the cache after the refresh (zero when there
	// is none).
	Meta   Meta
	Status Status
	KeyIDs []string

	// parsed is the JWKS the refresh fetched (or revalidated) and wrote,
	// with its keys as ParseJWKS gave them: a Guard reading the cache
	// back makes its validator of them instead of parsing the same bytes
	// again.
	parsed *parsedJWKS
}

// parsedJWKS is a JWKS and its keys.
type parsedJWKS struct {
	jwks []byte
	keys KeySet
}

// keysOf is the KeySet of jwks: p's keys when p holds these very bytes,
// else ParseJWKS.
func (p *parsedJWKS) keysOf(jwks []byte) (KeySet, error) {
	if p != nil && bytes.Equal(p.jwks, jwks) {
		return p.keys, nil
	}
	return ParseJWKS(jwks)
}

// fetchError is one try's failure; transient ones are retried.
type fetchError struct {
	err       error
	transient bool
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// Refresh fetches discovery and the JWKS it names, trying the retry ladder
// on transient failures (network errors, 5xx, 408, 429) and failing at
// once on a document that breaks a rule (wrong issuer, jwks_uri not https,
// garbage, over MaxDocumentSize). It revalidates with If-None-Match: a 304
// keeps the cached documents and moves fetchedAt.
//
// When every try fails and allowOfflineCacheFallback is on, the cache is
// kept and Refresh returns a nil error if the cache is within its lifetime
// plus tolerance (Report.FellBack, Report.Status), or an error wrapping
// ErrMetadataExpired beyond. With the fallback off a failed refresh is an
// error wrapping ErrUnreachable. The cache is written only by a successful
// try; a refused document never replaces it.
func (r *Refresher) Refresh(ctx context.Context) (Report, error) {
	o := r.Options
	rep := Report{Issuer: o.Issuer}
	if err := o.Validate(); err != nil {
		return rep, err
	}
	dir, err := Dir(r.Root, o.Issuer)
	if err != nil {
		return rep, err
	}
	rep.Dir = dir
	now := r.Now
	if now == nil {
		now = time.Now
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var cached *Metadata
	if md, err := Load(dir); err == nil {
		if md.Meta.Issuer != o.Issuer {
			return rep, fmt.Errorf("authority cache %s holds issuer %q, not %q: %w", dir, md.Meta.Issuer, o.Issuer, errdef.ErrInvalid)
		}
		cached = &md
	} else if !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errdef.ErrInvalid) {
		return rep, err
	}

	delays := o.Resilience.Delays()
	var last error
	for i := 0; ; i++ {
		rep.Attempts++
		md, keys, revalidated, err := r.fetch(ctx, cached, now)
		if err == nil {
			if err := Save(dir, md); err != nil {
				return rep, err
			}
			rep.Fetched, rep.Revalidated = !revalidated, revalidated
			rep.parsed = &parsedJWKS{jwks: md.JWKS, keys: keys}
			rep.fill(md, o, now())
			return rep, nil
		}
		last = err
		var fe *fetchError
		if ctx.Err() != nil || !errors.As(err, &fe) || !fe.transient || i >= len(delays) {
			break
		}
		if err := sleep(ctx, delays[i]); err != nil {
			last = err
			break
		}
		rep.Waited = append(rep.Waited, delays[i])
	}
	rep.FetchErr = last
	var fe *fetchError
	if !errors.As(last, &fe) || !fe.transient {
		// A refused document or a cancelled context: no fallback.
		if cached != nil {
			rep.fill(*cached, o, now())
		}
		return rep, fmt.Errorf("refreshing %s: %w", o.Issuer, last)
	}
	if cached == nil {
		return rep, fmt.Errorf("refreshing %s: %w after %d tries, and no cached metadata: %w", o.Issuer, ErrUnreachable, rep.Attempts, last)
	}
	rep.fill(*cached, o, now())
	if !o.Resilience.OfflineFallback() {
		return rep, fmt.Errorf("refreshing %s: %w after %d tries (offline cache fallback off): %w", o.Issuer, ErrUnreachable, rep.Attempts, last)
	}
	if rep.Status.State == Expired {
		return rep, fmt.Errorf("refreshing %s: %w after %d tries: %w: %s", o.Issuer, ErrUnreachable, rep.Attempts, ErrMetadataExpired, rep.Status.Reason)
	}
	rep.FellBack = true
	return rep, nil
}

// fill describes the cache md: its meta, state and key ids (of the keys
// the refresh parsed when it wrote md, else of md's JWKS parsed now).
func (rep *Report) fill(md Metadata, o Options, now time.Time) {
	rep.Meta = md.Meta
	rep.Status = Evaluate(md.Meta.FetchedAt, md.Meta.Lifetime(), o.Resilience, now)
	if ks, err := rep.parsed.keysOf(md.JWKS); err == nil {
		rep.KeyIDs = ks.IDs()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch is one try: discovery, its checks, the JWKS (parsed once: its keys
// are returned).
func (r *Refresher) fetch(ctx context.Context, cached *Metadata, now func() time.Time) (Metadata, KeySet, bool, error) {
	o := r.Options
	discURL := strings.TrimSuffix(o.Issuer, "/") + DiscoveryPath
	var etag, jwksETag string
	if cached != nil {
		etag = cached.Meta.DiscoveryETag
	}
	disc, discTag, discAge, notModified1, err := r.get(ctx, discURL, etag)
	if err != nil {
		return Metadata{}, KeySet{}, false, err
	}
	if notModified1 {
		disc, discTag = cached.Discovery, cached.Meta.DiscoveryETag
	}
	jwksURI, err := checkDiscovery(disc, o.Issuer, "the configured issuer", o.AllowLoopbackHTTP)
	if err != nil {
		return Metadata{}, KeySet{}, false, &fetchError{err: fmt.Errorf("discovery %s: %w", discURL, err)}
	}
	if cached != nil && cached.Meta.JWKSURI == jwksURI {
		jwksETag = cached.Meta.JWKSETag
	}
	jwks, jwksTag, jwksAge, notModified2, err := r.get(ctx, jwksURI, jwksETag)
	if err != nil {
		return Metadata{}, KeySet{}, false, err
	}
	if notModified2 {
		jwks, jwksTag = cached.JWKS, cached.Meta.JWKSETag
	}
	keys, err := ParseJWKS(jwks)
	if err != nil {
		return Metadata{}, KeySet{}, false, &fetchError{err: fmt.Errorf("%s: %w", jwksURI, err)}
	}
	life := o.Lifetime()
	if discAge >= 0 || jwksAge >= 0 {
		life = MaxCacheLifetime
		for _, a := range []time.Duration{discAge, jwksAge} {
			if a >= 0 && a < life {
				life = a
			}
		}
	}
	return Metadata{
		Discovery: disc,
		JWKS:      jwks,
		Meta: Meta{
			Issuer:          o.Issuer,
			JWKSURI:         jwksURI,
			FetchedAt:       now().UTC(),
			LifetimeSeconds: int64(life / time.Second),
			DiscoveryETag:   discTag,
			JWKSETag:        jwksTag,
		},
	}, keys, notModified1 && notModified2, nil
}

// get fetches u (bounded), with If-None-Match when etag is set. maxAge is
// -1 without a Cache-Control max-age.
func (r *Refresher) get(ctx context.Context, u, etag string) (body []byte, tag string, maxAge time.Duration, notModified bool, err error) {
	client := http.Client{Timeout: 30 * time.Second}
	if r.Client != nil {
		client = *r.Client
	}
	allow := r.Options.AllowLoopbackHTTP
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return checkScheme(req.URL, allow)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", -1, false, &fetchError{err: fmt.Errorf("%s: %w: %w", u, errdef.ErrInvalid, err)}
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(ue.Err, errdef.ErrInvalid) {
			return nil, "", -1, false, &fetchError{err: fmt.Errorf("%s: redirect: %w", u, ue.Err)}
		}
		return nil, "", -1, false, &fetchError{err: fmt.Errorf("%s: %w", u, err), transient: true}
	}
	defer resp.Body.Close()
	maxAge = parseMaxAge(resp.Header.Values("Cache-Control"))
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, etag, maxAge, true, nil
	case resp.StatusCode == http.StatusOK:
	default:
		transient := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		return nil, "", -1, false, &fetchError{err: fmt.Errorf("%s: HTTP %d", u, resp.StatusCode), transient: transient}
	}
	if body, err = limit.ReadAll(resp.Body, u+": body", MaxDocumentSize); err != nil {
		// Over the bound is the issuer's fault (not retried soon); a read
		// that broke off is transient.
		return nil, "", -1, false, &fetchError{err: err, transient: !errors.Is(err, errdef.ErrInvalid)}
	}
	return body, keptETag(resp.Header.Get("ETag")), maxAge, false, nil
}

// keptETag is the ETag a refresh records for revalidation: "" (none, the
// next fetch is unconditional) for one over MaxETagLength, which meta.json
// has no room for.
func keptETag(tag string) string {
	if len(tag) > MaxETagLength {
		return ""
	}
	return tag
}

// parseMaxAge reads max-age from Cache-Control; no-store, no-cache or a
// malformed value count as 0 (fresh for no time: the tolerance still
// applies), absent as -1.
func parseMaxAge(vals []string) time.Duration {
	age := time.Duration(-1)
	for _, v := range vals {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err != nil || n < 0 {
					return 0
				}
				if n > int64(MaxCacheLifetime/time.Second) {
					n = int64(MaxCacheLifetime / time.Second)
				}
				age = time.Duration(n) * time.Second
			}
		}
	}
	return age
}
