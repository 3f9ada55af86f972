package authority

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/loopback"
)

// Defaults of the runbook's keys, used where a key is absent (the zero value).
const (
	DefaultTokenClockSkew        = 60 * time.Second
	DefaultOfflineCacheTolerance = 10 * time.Minute
	// DefaultCacheLifetime is the cache lifetime of metadata whose responses
	// announce no Cache-Control max-age.
	DefaultCacheLifetime = 10 * time.Minute
	// DefaultTenantClaim is the claim that carries a token's tenant.
	DefaultTenantClaim = "stellaops:tenant"
)

// DefaultRetryDelays is the runbook's retry ladder: 1 s, 2 s, 5 s.
func DefaultRetryDelays() []time.Duration {
	return []time.Duration{time.Second, 2 * time.Second, 5 * time.Second}
}

// Options are the Authority keys of the runbook (concelier.authority in
// concelier.yaml), as serve.yaml and `offkit authority` take them. The zero
// value of every field means its documented default; Validate checks the
// rest.
type Options struct {
	Enabled bool `json:"enabled"`
	// AllowAnonymousFallback lets requests without a token through (logged
	// as anonymous). For rollouts only.
	AllowAnonymousFallback bool `json:"allowAnonymousFallback"`
	// Issuer is the Authority's issuer URL; discovery's issuer and every
	// token's iss must equal it exactly.
	Issuer string `json:"issuer"`
	// Audiences: a token's aud must contain at least one of them.
	Audiences []string `json:"audiences"`
	// RequiredScopes: every one must be in the token's scope or scp.
	RequiredScopes []string `json:"requiredScopes"`
	// RequiredTenants: when set, the token's tenant claim must be one of them.
	RequiredTenants []string `json:"requiredTenants"`
	// TenantClaim names the tenant claim (default "stellaops:tenant").
	TenantClaim string `json:"tenantClaim,omitempty"`
	// BypassNetworks: CIDRs (v4 or v6) whose requests without a token pass,
	// marked bypass=True.
	BypassNetworks []string `json:"bypassNetworks"`
	// TrustedProxies: CIDRs of proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// TokenClockSkewSeconds is the leeway on exp, nbf, iat and DPoP iat
	// (0 means 60).
	TokenClockSkewSeconds int `json:"tokenClockSkewSeconds"`
	// CacheLifetime is the lifetime of fetched metadata when the issuer
	// announces none (default 10 minutes).
	CacheLifetime Duration `json:"cacheLifetime,omitempty"`
	// AllowLoopbackHTTP accepts http:// issuer and jwks_uri URLs on loopback
	// addresses (tests, a local issuer); https is required otherwise.
	AllowLoopbackHTTP bool `json:"allowLoopbackHttp,omitempty"`
	// CAFile is a PEM file of CA certificates trusted for the issuer's TLS
	// besides the system's (the site CA).
	CAFile string `json:"caFile,omitempty"`

	Resilience Resilience `json:"resilience"`
}

// Resilience is the runbook's resilience block.
type Resilience struct {
	// EnableRetries: nil means true. false fails fast after one try.
	EnableRetries *bool `json:"enableRetries,omitempty"`
	// RetryDelays: zero or negative entries are ignored; empty means 1s, 2s, 5s.
	RetryDelays []Duration `json:"retryDelays,omitempty"`
	// AllowOfflineCacheFallback: nil means true.
	AllowOfflineCacheFallback *bool `json:"allowOfflineCacheFallback,omitempty"`
	// OfflineCacheTolerance: zero means 10 minutes.
	OfflineCacheTolerance Duration `json:"offlineCacheTolerance,omitempty"`
}

// Retries reports whether retries are enabled.
func (r Resilience) Retries() bool { return r.EnableRetries == nil || *r.EnableRetries }

// OfflineFallback reports whether the offline cache fallback is allowed.
func (r Resilience) OfflineFallback() bool {
	return r.AllowOfflineCacheFallback == nil || *r.AllowOfflineCacheFallback
}

// Delays is the retry ladder: the waits before the second, third, … try.
// Disabled retries give none.
func (r Resilience) Delays() []time.Duration {
	if !r.Retries() {
		return nil
	}
	var ds []time.Duration
	for _, d := range r.RetryDelays {
		if d > 0 {
			ds = append(ds, time.Duration(d))
		}
	}
	if len(ds) == 0 {
		return DefaultRetryDelays()
	}
	return ds
}

// Tolerance is the offline cache tolerance, or 0 when the fallback is off.
func (r Resilience) Tolerance() time.Duration {
	if !r.OfflineFallback() {
		return 0
	}
	if r.OfflineCacheTolerance <= 0 {
		return DefaultOfflineCacheTolerance
	}
	return time.Duration(r.OfflineCacheTolerance)
}

// Skew is the token clock skew.
func (o Options) Skew() time.Duration {
	if o.TokenClockSkewSeconds <= 0 {
		return DefaultTokenClockSkew
	}
	return time.Duration(o.TokenClockSkewSeconds) * time.Second
}

// Lifetime is the default metadata cache lifetime.
func (o Options) Lifetime() time.Duration {
	if o.CacheLifetime <= 0 {
		return DefaultCacheLifetime
	}
	return time.Duration(o.CacheLifetime)
}

func (o Options) tenantClaim() string {
	if o.TenantClaim == "" {
		return DefaultTenantClaim
	}
	return o.TenantClaim
}

// MaxTokenClockSkewSeconds bounds tokenClockSkewSeconds (one hour).
const MaxTokenClockSkewSeconds = 3600

// Validate checks the options: an absolute issuer URL (https, or http on
// loopback when allowed) without query or fragment, at least one audience
// when enabled, CIDRs that parse, a skew within bounds. Errors name the key
// and wrap errdef.ErrInvalid.
func (o Options) Validate() error {
	if o.Issuer == "" {
		return fmt.Errorf("authority.issuer: missing: %w", errdef.ErrInvalid)
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("authority.issuer %q: not an absolute URL without query, fragment or user: %w", o.Issuer, errdef.ErrInvalid)
	}
	if err := checkScheme(u, o.AllowLoopbackHTTP); err != nil {
		return fmt.Errorf("authority.issuer: %w", err)
	}
	if o.Enabled && len(o.Audiences) == 0 {
		return fmt.Errorf("authority.audiences: at least one audience is required: %w", errdef.ErrInvalid)
	}
	if _, err := parsePrefixes(o.BypassNetworks); err != nil {
		return fmt.Errorf("authority.bypassNetworks: %w", err)
	}
	if _, err := parsePrefixes(o.TrustedProxies); err != nil {
		return fmt.Errorf("authority.trustedProxies: %w", err)
	}
	if o.TokenClockSkewSeconds < 0 || o.TokenClockSkewSeconds > MaxTokenClockSkewSeconds {
		return fmt.Errorf("authority.tokenClockSkewSeconds %d: not within 0..%d: %w", o.TokenClockSkewSeconds, MaxTokenClockSkewSeconds, errdef.ErrInvalid)
	}
	if o.Resilience.OfflineCacheTolerance < 0 {
		return fmt.Errorf("authority.resilience.offlineCacheTolerance: negative: %w", errdef.ErrInvalid)
	}
	if o.CacheLifetime < 0 {
		return fmt.Errorf("authority.cacheLifetime: negative: %w", errdef.ErrInvalid)
	}
	return nil
}

// checkScheme accepts https, and http on a loopback host when allowed.
func checkScheme(u *url.URL, allowLoopbackHTTP bool) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowLoopbackHTTP && loopback.Host(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is allowed only on loopback with allowLoopbackHttp: %w", u.Redacted(), errdef.ErrInvalid)
	}
	return fmt.Errorf("%q: scheme %q is not https: %w", u.Redacted(), u.Scheme, errdef.ErrInvalid)
}

// parsePrefixes parses CIDRs; a bare address is its own /32 or /128.
func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		var p netip.Prefix
		var err error
		if strings.Contains(c, "/") {
			p, err = netip.ParsePrefix(c)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(c)
			if err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: not a CIDR: %w", c, errdef.ErrInvalid)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96: %w", c, errdef.ErrInvalid)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Duration is a time.Duration written as the runbook writes it,
// "hh:mm:ss" (.NET TimeSpan: optional leading "-", optional "d." days,
// optional ".fraction" of seconds), or as a Go duration ("90s", "15m").
type Duration time.Duration

// ParseDuration parses "hh:mm:ss", "d.hh:mm:ss", "hh:mm:ss.fff" or a Go
// duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("duration %q: neither hh:mm:ss nor a Go duration: %w", s, errdef.ErrInvalid)
		}
		return d, nil
	}
	bad := fmt.Errorf("duration %q: not [-][d.]hh:mm:ss[.fraction]: %w", s, errdef.ErrInvalid)
	neg := false
	rest := s
	if strings.HasPrefix(rest, "-") {
		neg, rest = true, rest[1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return 0, bad
	}
	var days int64
	hh := parts[0]
	if i := strings.IndexByte(hh, '.'); i >= 0 {
		d, err := parseDigits(hh[:i], 7)
		if err != nil {
			return 0, bad
		}
		days, hh = d, hh[i+1:]
	}
	h, err1 := parseDigits(hh, 2)
	m, err2 := parseDigits(parts[1], 2)
	sec, frac, _ := strings.Cut(parts[2], ".")
	sc, err3 := parseDigits(sec, 2)
	if err1 != nil || err2 != nil || err3 != nil || h > 23 || m > 59 || sc > 59 {
		return 0, bad
	}
	var ns int64
	if frac != "" || strings.HasSuffix(parts[2], ".") {
		if len(frac) == 0 || len(frac) > 9 {
			return 0, bad
		}
		f, err := parseDigits(frac, 9)
		if err != nil {
			return 0, bad
		}
		for range 9 - len(frac) {
			f *= 10
		}
		ns = f
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sc)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, nil
}

func parseDigits(s string, max int) (int64, error) {
	if s == "" || len(s) > max {
		return 0, errdef.ErrInvalid
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errdef.ErrInvalid
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// UnmarshalText implements encoding.TextUnmarshaler (JSON and YAML strings).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes "hh:mm:ss" (with a fraction when there is one).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats d as the runbook does: "00:10:00".
func (d Duration) String() string {
	v := time.Duration(d)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	days := v / (24 * time.Hour)
	v -= days * 24 * time.Hour
	h, m, s := v/time.Hour, (v%time.Hour)/time.Minute, (v%time.Minute)/time.Second
	ns := v % time.Second
	out := sign
	if days > 0 {
		out += strconv.FormatInt(int64(days), 10) + "."
	}
	out += fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if ns > 0 {
		out += strings.TrimRight(fmt.Sprintf(".%09d", ns), "0")
	}
	return out
}
