package authority

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// MaxTokenSize bounds an access token (16 KiB): a longer Authorization value
// is refused before it is parsed.
const MaxTokenSize = 16 << 10

// ErrUnknownKeyID: the token names a kid the cached JWKS does not have. A
// caller may refresh the metadata (at most once a minute: RefreshLimiter)
// and check again.
var ErrUnknownKeyID = errors.New("unknown key id")

// Outcome is what a check decided, one of a fixed set (the metrics' label).
type Outcome int

const (
	// OK: a valid token with the required scopes and tenant.
	OK Outcome = iota
	// NoToken: no token, no bypass, no anonymous fallback (401).
	NoToken
	// BadToken: the token is malformed, unsigned, not signed by a cached
	// key, or its iss, aud, exp, nbf or iat is wrong (401).
	BadToken
	// Scope: a required scope is missing (403).
	Scope
	// Tenant: the tenant is not a required one (403).
	Tenant
	// BoundToken: a sender-constrained token without its proof: DPoP proof
	// or client certificate missing or wrong (401).
	BoundToken
	// ExpiredMetadata: the cached metadata is past lifetime + tolerance (503).
	ExpiredMetadata
	// Bypass: no token, from a bypass network (passes, bypass=True).
	Bypass
	// Anonymous: no token, let through by allowAnonymousFallback (passes).
	Anonymous
)

var outcomeNames = [...]string{"ok", "no_token", "bad_token", "scope", "tenant", "bound_token", "expired_metadata", "bypass", "anonymous"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Outcomes lists every outcome, for metrics.
func Outcomes() []Outcome {
	return []Outcome{OK, NoToken, BadToken, Scope, Tenant, BoundToken, ExpiredMetadata, Bypass, Anonymous}
}

// Result is the decision on one request.
type Result struct {
	Outcome Outcome
	// Status is the HTTP status of a refusal (401, 403, 503), 200 when the
	// request may proceed.
	Status int
	// Reason says why, for the response body and the audit line; it never
	// contains a token, a proof or key material.
	Reason string
	// Err is the typed cause where there is one (ErrUnknownKeyID,
	// ErrReplayed, ErrMetadataExpired).
	Err error
	// What the token said, once its signature verified (empty otherwise).
	Subject, ClientID, Tenant string
	Scopes                    []string
	// Bypass: the request passed because of a bypass network.
	Bypass bool
}

// Allowed reports whether the request may proceed.
func (r Result) Allowed() bool {
	return r.Outcome == OK || r.Outcome == Bypass || r.Outcome == Anonymous
}

var outcomeStatus = map[Outcome]int{OK: 200, Bypass: 200, Anonymous: 200, NoToken: 401, BadToken: 401, BoundToken: 401, Scope: 403, Tenant: 403, ExpiredMetadata: 503}

func result(o Outcome, reason string, err error) Result {
	return Result{Outcome: o, Status: outcomeStatus[o], Reason: reason, Err: err}
}

// Request is what a check needs of an HTTP request.
type Request struct {
	// Authorization and DPoP are the header values (all of them).
	Authorization, DPoP []string
	// Method and URL are the request as the client addressed it: scheme,
	// host and path (DPoP's htm and htu are compared with them).
	Method string
	URL    *url.URL
	// PeerCertificates is the TLS client certificate chain, leaf first.
	PeerCertificates []*x509.Certificate
	// Remote is the client address (see ClientAddr).
	Remote netip.Addr
	// RequiredScopes of the route group; nil means Options.RequiredScopes.
	RequiredScopes []string
}

// Access is what a request may do before any token is looked at.
type Access int

const (
	// NeedToken: the request must carry a valid token.
	NeedToken Access = iota
	// BypassAccess: no token, and the remote address is in bypassNetworks.
	BypassAccess
	// AnonymousAccess: no token, and allowAnonymousFallback is on.
	AnonymousAccess
)

// Decide is the bypass and anonymous-fallback rule, a pure function: a
// request without a token passes as bypass when its remote address is in
// one of bypassNetworks (IPv4-mapped IPv6 addresses count as IPv4), else as
// anonymous when allowAnonymousFallback is on; every other request needs a
// valid token. A request that carries a token is always checked: a bad token
// is refused even from a bypass network or with the fallback on. CIDRs that
// do not parse bypass nothing (Options.Validate reports them).
func Decide(remote netip.Addr, hasToken bool, o Options) Access {
	ps, _ := parsePrefixes(o.BypassNetworks)
	return decide(remote, hasToken, ps, o.AllowAnonymousFallback)
}

func decide(remote netip.Addr, hasToken bool, bypass []netip.Prefix, anonymous bool) Access {
	if hasToken {
		return NeedToken
	}
	if inPrefixes(remote, bypass) {
		return BypassAccess
	}
	if anonymous {
		return AnonymousAccess
	}
	return NeedToken
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Validator checks requests against one metadata snapshot. It is safe for
// concurrent use; after a refresh, make a new one.
type Validator struct {
	opts    Options
	meta    Meta
	keys    KeySet
	bypass  []netip.Prefix
	proxies []netip.Prefix
	now     func() time.Time
	replay  *ReplayCache
}

// NewValidator makes a validator from validated options and a snapshot.
// now is the clock (nil: time.Now); replay remembers DPoP proofs (nil: a
// new ReplayCache of DefaultReplayEntries entries, a window of twice the
// skew).
func NewValidator(o Options, md Metadata, now func() time.Time, replay *ReplayCache) (*Validator, error) {
	return newValidator(o, md, nil, now, replay)
}

// newValidator is NewValidator that takes md's keys from parsed when it
// holds md's JWKS (a refresh that just parsed them), else parses them.
func newValidator(o Options, md Metadata, parsed *parsedJWKS, now func() time.Time, replay *ReplayCache) (*Validator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if md.Meta.Issuer != o.Issuer {
		return nil, fmt.Errorf("authority metadata is for issuer %q, not %q: %w", md.Meta.Issuer, o.Issuer, errdef.ErrInvalid)
	}
	keys, err := parsed.keysOf(md.JWKS)
	if err != nil {
		return nil, err
	}
	bypass, _ := parsePrefixes(o.BypassNetworks)
	proxies, _ := parsePrefixes(o.TrustedProxies)
	if now == nil {
		now = time.Now
	}
	if replay == nil {
		replay = NewReplayCache(2*o.Skew(), DefaultReplayEntries)
	}
	return &Validator{opts: o, meta: md.Meta, keys: keys, bypass: bypass, proxies: proxies, now: now, replay: replay}, nil
}

// Status is the snapshot's state now.
func (v *Validator) Status() Status {
	return Evaluate(v.meta.FetchedAt, v.meta.Lifetime(), v.opts.Resilience, v.now())
}

// Check decides on a request: bypass and anonymous fallback for requests
// without a token (Decide), then for a token: the metadata within
// tolerance, the token's size, its signature by a cached key whose type
// matches alg (RS256, PS256, ES256, EdDSA; none and HMAC refused), iss,
// aud, exp, nbf and iat with the skew, the sender constraint (cnf.jkt: a
// DPoP proof; cnf.x5t#S256: the TLS client certificate), the required
// scopes and tenants.
func (v *Validator) Check(req Request) Result {
	if len(req.Authorization) > 1 {
		return result(BadToken, "more than one Authorization header", nil)
	}
	var scheme, token string
	if len(req.Authorization) == 1 {
		scheme, token, _ = strings.Cut(strings.TrimSpace(req.Authorization[0]), " ")
		token = strings.TrimSpace(token)
	}
	switch a := decide(req.Remote, token != "" || scheme != "", v.bypass, v.opts.AllowAnonymousFallback); a {
	case BypassAccess:
		r := result(Bypass, "no token, remote address in bypassNetworks", nil)
		r.Bypass = true
		return r
	case AnonymousAccess:
		return result(Anonymous, "no token, allowAnonymousFallback is on", nil)
	}
	if scheme == "" {
		return result(NoToken, "no token: send Authorization: Bearer <token>", nil)
	}
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP") {
		return result(BadToken, "authorization scheme is neither Bearer nor DPoP", nil)
	}
	if token == "" {
		return result(BadToken, "empty token", nil)
	}
	if st := v.Status(); st.State == Expired {
		return result(ExpiredMetadata, fmt.Sprintf("authority metadata of %s expired: %s", v.opts.Issuer, st.Reason), ErrMetadataExpired)
	}
	if len(token) > MaxTokenSize {
		return result(BadToken, fmt.Sprintf("token of %d bytes, over %d", len(token), MaxTokenSize), nil)
	}
	c, res, ok := v.verify(token)
	if !ok {
		return res
	}
	if r, ok := v.checkBinding(req, strings.EqualFold(scheme, "DPoP"), token, c); !ok {
		return r
	}
	res = result(OK, "token accepted", nil)
	res.Subject, res.ClientID, res.Tenant, res.Scopes = c.Subject, c.ClientID, c.tenant, c.scopes
	required := req.RequiredScopes
	if required == nil {
		required = v.opts.RequiredScopes
	}
	for _, s := range required {
		if !slices.Contains(c.scopes, s) {
			res.Outcome, res.Status, res.Reason = Scope, outcomeStatus[Scope], fmt.Sprintf("token lacks the required scope %q", s)
			return res
		}
	}
	if len(v.opts.RequiredTenants) > 0 && !slices.Contains(v.opts.RequiredTenants, c.tenant) {
		res.Outcome, res.Status = Tenant, outcomeStatus[Tenant]
		if c.tenant == "" {
			res.Reason = fmt.Sprintf("token has no %s claim", v.opts.tenantClaim())
		} else {
			res.Reason = fmt.Sprintf("tenant %q is not a required tenant", c.tenant)
		}
		return res
	}
	return res
}

// claims is what a verified token says.
type claims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	scopes   []string
	tenant   string
	cnf      map[string]json.RawMessage
	hasCnf   bool
}

// verify checks the token's signature and registered claims.
func (v *Validator) verify(token string) (claims, Result, bool) {
	var c claims
	jws, err := jose.ParseSignedCompact(token, acceptedAlgs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return c, result(BadToken, fmt.Sprintf("signature algorithm %q is not accepted (RS256, PS256, ES256, EdDSA)", truncate(string(ua.Got), 16)), nil), false
		}
		return c, result(BadToken, "token is not a compact JWS (three base64url parts)", nil), false
	}
	sig := jws.Signatures[0]
	alg := jose.SignatureAlgorithm(sig.Protected.Algorithm)
	if typ, _ := sig.Protected.ExtraHeaders[jose.HeaderType].(string); strings.EqualFold(typ, "dpop+jwt") {
		return c, result(BadToken, "a DPoP proof is not an access token", nil), false
	}
	key, r, ok := v.key(sig.Protected.KeyID, alg)
	if !ok {
		return c, r, false
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return c, result(BadToken, fmt.Sprintf("signature does not verify with key %q", key.KeyID), nil), false
	}
	var extra map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil || json.Unmarshal(payload, &extra) != nil {
		return c, result(BadToken, "token claims are not a JSON object of the right types", nil), false
	}
	now := v.now()
	skew := v.opts.Skew()
	switch {
	case c.Issuer != v.opts.Issuer:
		return c, result(BadToken, fmt.Sprintf("issuer %q is not %q", truncate(c.Issuer, 200), v.opts.Issuer), nil), false
	case !slices.ContainsFunc(v.opts.Audiences, c.Audience.Contains):
		return c, result(BadToken, fmt.Sprintf("audience %q is none of %q", truncateAll(c.Audience), v.opts.Audiences), nil), false
	case c.Expiry == nil:
		return c, result(BadToken, "token has no exp", nil), false
	case now.After(c.Expiry.Time().Add(skew)):
		return c, result(BadToken, fmt.Sprintf("token expired at %s (skew %s)", c.Expiry.Time().UTC().Format(time.RFC3339), skew), nil), false
	case c.NotBefore != nil && now.Before(c.NotBefore.Time().Add(-skew)):
		return c, result(BadToken, fmt.Sprintf("token not valid before %s (skew %s)", c.NotBefore.Time().UTC().Format(time.RFC3339), skew), nil), false
	case c.IssuedAt != nil && now.Before(c.IssuedAt.Time().Add(-skew)):
		return c, result(BadToken, fmt.Sprintf("token issued in the future, at %s (skew %s)", c.IssuedAt.Time().UTC().Format(time.RFC3339), skew), nil), false
	}
	var err1, err2, err3 error
	c.scopes, err1 = scopesOf(extra)
	if t, ok := extra[v.opts.tenantClaim()]; ok {
		err2 = json.Unmarshal(t, &c.tenant)
	}
	if raw, ok := extra["cnf"]; ok {
		c.hasCnf = true
		err3 = json.Unmarshal(raw, &c.cnf)
	}
	if err1 != nil || err2 != nil || err3 != nil {
		return c, result(BadToken, "scope, scp, tenant or cnf claim of the wrong type", nil), false
	}
	return c, Result{}, true
}

// key finds the cached key for kid that alg fits. A token without kid is
// accepted only when the JWKS has one key.
func (v *Validator) key(kid string, alg jose.SignatureAlgorithm) (jose.JSONWebKey, Result, bool) {
	var cands []jose.JSONWebKey
	if kid == "" {
		if len(v.keys.keys) != 1 {
			return jose.JSONWebKey{}, result(BadToken, "token has no kid and the JWKS has several keys", nil), false
		}
		cands = v.keys.keys
	} else {
		for _, k := range v.keys.keys {
			if k.KeyID == kid {
				cands = append(cands, k)
			}
		}
	}
	if len(cands) == 0 {
		return jose.JSONWebKey{}, result(BadToken, fmt.Sprintf("key id %q is not in the cached JWKS", truncate(kid, 64)), ErrUnknownKeyID), false
	}
	for _, k := range cands {
		if algFits(alg, k.Key) && (k.Algorithm == "" || k.Algorithm == string(alg)) {
			return k, Result{}, true
		}
	}
	return jose.JSONWebKey{}, result(BadToken, fmt.Sprintf("algorithm %s does not match key %q", alg, truncate(kid, 64)), nil), false
}

// scopesOf reads scope (space-separated) and scp (an array, or a string),
// deduplicated, in order.
func scopesOf(extra map[string]json.RawMessage) ([]string, error) {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if raw, ok := extra["scope"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		for _, f := range strings.Fields(s) {
			add(f)
		}
	}
	if raw, ok := extra["scp"]; ok {
		var arr []string
		if err := json.Unmarshal(raw, &arr); err != nil {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, err
			}
			arr = strings.Fields(s)
		}
		for _, s := range arr {
			add(s)
		}
	}
	return out, nil
}

// checkBinding enforces the sender constraint: a token with cnf is never a
// plain bearer token.
func (v *Validator) checkBinding(req Request, dpopScheme bool, token string, c claims) (Result, bool) {
	bound := func(reason string, err error) (Result, bool) {
		return result(BoundToken, reason, err), false
	}
	var jkt, x5t string
	if c.hasCnf {
		if c.cnf == nil {
			return bound("cnf claim is not an object", nil)
		}
		for k, raw := range c.cnf {
			var s string
			switch k {
			case "jkt", "x5t#S256":
				if err := json.Unmarshal(raw, &s); err != nil || s == "" {
					return bound(fmt.Sprintf("cnf.%s is not a non-empty string", k), nil)
				}
			default:
				return bound(fmt.Sprintf("confirmation method cnf.%s is not supported", truncate(k, 32)), nil)
			}
			if k == "jkt" {
				jkt = s
			} else {
				x5t = s
			}
		}
		if jkt == "" && x5t == "" {
			return bound("cnf claim names no confirmation method", nil)
		}
	}
	switch {
	case jkt == "" && dpopScheme:
		return bound("DPoP scheme with a token that is not DPoP-bound (no cnf.jkt)", nil)
	case jkt != "" && !dpopScheme:
		return bound("DPoP-bound token (cnf.jkt) sent with the Bearer scheme", nil)
	case jkt == "" && len(req.DPoP) > 0:
		return bound("DPoP proof sent with a token that is not DPoP-bound", nil)
	}
	if jkt != "" {
		if err := v.checkDPoP(req, token, jkt); err != nil {
			return bound(err.Error(), errors.Unwrap(err))
		}
	}
	if x5t != "" {
		if len(req.PeerCertificates) == 0 {
			return bound("token is bound to a TLS client certificate (cnf.x5t#S256) and the request has none", nil)
		}
		got := sha256.Sum256(req.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(got[:])), []byte(x5t)) != 1 {
			return bound("TLS client certificate is not the one the token is bound to (cnf.x5t#S256)", nil)
		}
	}
	return Result{}, true
}

// truncate quotes at most n bytes of s (limit.Clip).
func truncate(s string, n int) string { return limit.Clip(s, n) }

func truncateAll(ss []string) []string {
	var out []string
	for i, s := range ss {
		if i == 4 {
			out = append(out, "…")
			break
		}
		out = append(out, truncate(s, 100))
	}
	return out
}
