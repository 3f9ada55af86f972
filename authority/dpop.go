package authority

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Limits of DPoP proofs.
const (
	// MaxProofSize bounds a DPoP header (8 KiB).
	MaxProofSize = 8 << 10
	// MaxJTILength bounds a proof's jti.
	MaxJTILength = 256
	// DefaultReplayEntries bounds the replay cache.
	DefaultReplayEntries = 100_000
)

// ErrReplayed: a DPoP proof's jti was already used within the window.
var ErrReplayed = errors.New("DPoP proof replayed")

// ErrReplayCacheFull: the replay cache holds its maximum of unexpired
// proofs; new proofs are refused (fail closed) until some expire.
var ErrReplayCacheFull = errors.New("DPoP replay cache full")

// checkDPoP verifies the request's DPoP proof for a token bound to jkt
// (RFC 9449 section 4.3): one DPoP header; a compact JWS with typ dpop+jwt,
// an asymmetric alg (RS256, PS256, ES256, EdDSA) fitting the public jwk in
// its header, a signature by that jwk; the jwk's RFC 7638 SHA-256
// thumbprint equal to cnf.jkt; htm equal to the method and htu to the
// request URL without query and fragment; iat within the skew of now; ath
// the base64url SHA-256 of the access token; a jti not seen within the
// replay window. Errors are the reasons, wrapping ErrReplayed or
// ErrReplayCacheFull where those apply.
func (v *Validator) checkDPoP(req Request, token, jkt string) error {
	switch {
	case len(req.DPoP) == 0:
		return errors.New("DPoP-bound token without a DPoP proof")
	case len(req.DPoP) > 1:
		return errors.New("more than one DPoP header")
	case len(req.DPoP[0]) > MaxProofSize:
		return fmt.Errorf("DPoP proof of %d bytes, over %d", len(req.DPoP[0]), MaxProofSize)
	}
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(req.DPoP[0]), acceptedAlgs)
	if err != nil {
		return errors.New("DPoP proof is not a compact JWS with an asymmetric algorithm (RS256, PS256, ES256, EdDSA)")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return errors.New("DPoP proof typ is not dpop+jwt")
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !algFits(alg, h.JSONWebKey.Key) {
		return fmt.Errorf("DPoP proof jwk header is missing, private, or not a key for %s", alg)
	}
	payload, err := jws.Verify(h.JSONWebKey.Key)
	if err != nil {
		return errors.New("DPoP proof signature does not verify with its jwk")
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(tp)), []byte(jkt)) != 1 {
		return errors.New("DPoP proof key is not the key the token is bound to (cnf.jkt)")
	}
	var p struct {
		JTI string           `json:"jti"`
		HTM string           `json:"htm"`
		HTU string           `json:"htu"`
		IAT *jwt.NumericDate `json:"iat"`
		ATH string           `json:"ath"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return errors.New("DPoP proof claims are not a JSON object of the right types")
	}
	now, skew := v.now(), v.opts.Skew()
	switch {
	case p.JTI == "" || len(p.JTI) > MaxJTILength:
		return fmt.Errorf("DPoP proof jti is empty or over %d bytes", MaxJTILength)
	case p.HTM != req.Method:
		return fmt.Errorf("DPoP proof htm %q is not the request method %q", truncate(p.HTM, 16), req.Method)
	case req.URL == nil || !sameHTU(p.HTU, req.URL):
		return fmt.Errorf("DPoP proof htu %q is not the request URL %q", truncate(p.HTU, 200), truncate(htuOf(req.URL), 200))
	case p.IAT == nil:
		return errors.New("DPoP proof has no iat")
	case p.IAT.Time().Before(now.Add(-skew)) || p.IAT.Time().After(now.Add(skew)):
		return fmt.Errorf("DPoP proof iat %s is not within %s of now", p.IAT.Time().UTC().Format(time.RFC3339), skew)
	}
	ath := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(ath[:])), []byte(p.ATH)) != 1 {
		return errors.New("DPoP proof ath is not the hash of the access token")
	}
	if err := v.replay.Add(jkt+"\x00"+p.JTI, now); err != nil {
		return fmt.Errorf("DPoP proof rejected: %w", err)
	}
	return nil
}

// htuOf is the request URL as htu compares it: scheme and host lowercased,
// the scheme's default port dropped, an empty path as "/", no query, no
// fragment.
func htuOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

func sameHTU(htu string, req *url.URL) bool {
	u, err := url.Parse(htu)
	if err != nil || !u.IsAbs() || u.User != nil {
		return false
	}
	return htuOf(u) == htuOf(req)
}

// ReplayCache remembers DPoP proofs (by key thumbprint and jti) for a
// window, up to a maximum number of entries. It is safe for concurrent use.
type ReplayCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[[32]byte]time.Time
	queue  []replayEntry // in order of expiry
}

type replayEntry struct {
	key     [32]byte
	expires time.Time
}

// NewReplayCache makes a cache keeping each proof for window, holding at
// most max unexpired proofs.
func NewReplayCache(window time.Duration, max int) *ReplayCache {
	return &ReplayCache{window: window, max: max, seen: make(map[[32]byte]time.Time)}
}

// Add records key at now; it fails with ErrReplayed if key was added within
// the window, and with ErrReplayCacheFull if max unexpired keys are held.
func (c *ReplayCache) Add(key string, now time.Time) error {
	k := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > 0 && !c.queue[0].expires.After(now) {
		if c.seen[c.queue[0].key].Equal(c.queue[0].expires) {
			delete(c.seen, c.queue[0].key)
		}
		c.queue = c.queue[1:]
	}
	if exp, ok := c.seen[k]; ok && exp.After(now) {
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		return ErrReplayCacheFull
	}
	exp := now.Add(c.window)
	if n := len(c.queue); n > 0 && exp.Before(c.queue[n-1].expires) {
		exp = c.queue[n-1].expires // keep the queue ordered if the clock steps back
	}
	c.seen[k] = exp
	c.queue = append(c.queue, replayEntry{k, exp})
	return nil
}

// Len is the number of proofs held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// RefreshLimiter allows one metadata refresh per interval (default one
// minute), so tokens with unknown key ids cannot cause a refresh storm. It
// is safe for concurrent use.
type RefreshLimiter struct {
	// Interval between allowed refreshes (0: one minute).
	Interval time.Duration
	// Now is the clock (nil: time.Now).
	Now  func() time.Time
	mu   sync.Mutex
	last time.Time
	used bool
}

// Allow reports whether a refresh may start now, and if so counts it.
func (l *RefreshLimiter) Allow() bool {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	iv := l.Interval
	if iv <= 0 {
		iv = time.Minute
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used && t.Sub(l.last) < iv && !t.Before(l.last) {
		return false
	}
	l.used, l.last = true, t
	return true
}
