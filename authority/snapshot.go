package authority

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

// NewSnapshot makes a snapshot of issuer's metadata from a saved discovery
// document and JWKS (a kit carries one), checked as a refresh checks what
// it fetches: issuer an absolute https URL (http only on a loopback host);
// discovery a JSON object, at most MaxDocumentSize, whose issuer equals
// issuer byte for byte and whose jwks_uri is an absolute https URL (http
// only on loopback); the JWKS as ParseJWKS wants it (a private or symmetric
// key refuses the set whole). fetchedAt is when the pair was fetched
// (truncated to the second); lifetime is the cache lifetime the issuer
// announced (0: DefaultCacheLifetime; at most MaxCacheLifetime). Errors
// wrap errdef.ErrInvalid and never quote key material.
func NewSnapshot(issuer string, discovery, jwks []byte, fetchedAt time.Time, lifetime time.Duration) (Metadata, error) {
	md, _, err := newSnapshot(issuer, discovery, jwks, fetchedAt, lifetime)
	return md, err
}

// newSnapshot is NewSnapshot that also returns the JWKS as parsed, so that
// a caller needing its keys does not parse it again.
func newSnapshot(issuer string, discovery, jwks []byte, fetchedAt time.Time, lifetime time.Duration) (Metadata, KeySet, error) {
	if err := (Options{Issuer: issuer, AllowLoopbackHTTP: true}).Validate(); err != nil {
		return Metadata{}, KeySet{}, err
	}
	if _, err := Dir("", issuer); err != nil {
		return Metadata{}, KeySet{}, err
	}
	if fetchedAt.IsZero() {
		return Metadata{}, KeySet{}, fmt.Errorf("snapshot of %s: fetchedAt missing: %w", issuer, errdef.ErrInvalid)
	}
	switch {
	case lifetime == 0:
		lifetime = DefaultCacheLifetime
	case lifetime < 0 || lifetime > MaxCacheLifetime:
		return Metadata{}, KeySet{}, fmt.Errorf("snapshot of %s: lifetime %s not within 0..%s: %w", issuer, lifetime, MaxCacheLifetime, errdef.ErrInvalid)
	}
	if len(discovery) > MaxDocumentSize {
		return Metadata{}, KeySet{}, fmt.Errorf("discovery of %s: over %d bytes: %w", issuer, MaxDocumentSize, errdef.ErrInvalid)
	}
	jwksURI, err := checkDiscovery(discovery, issuer, "the snapshot's issuer", true)
	if err != nil {
		return Metadata{}, KeySet{}, fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	ks, err := ParseJWKS(jwks)
	if err != nil {
		return Metadata{}, KeySet{}, fmt.Errorf("JWKS of %s: %w", issuer, err)
	}
	return Metadata{Discovery: discovery, JWKS: jwks, Meta: Meta{
		Issuer:          issuer,
		JWKSURI:         jwksURI,
		FetchedAt:       fetchedAt.UTC().Truncate(time.Second),
		LifetimeSeconds: int64(lifetime / time.Second),
	}}, ks, nil
}

// Import is what ImportSnapshot did.
type Import struct {
	Issuer string
	Dir    string // the site's cache folder of the issuer
	// Imported: the snapshot replaced the cache (or made it). Otherwise the
	// cache was as new or newer, and was kept.
	Imported bool
	// FetchedAt is the snapshot's; CachedFetchedAt the cache's before the
	// import (zero when there was none).
	FetchedAt, CachedFetchedAt time.Time
	KeyIDs                     []string
}

// ImportSnapshot copies the snapshot md into the cache of its issuer under
// root, atomically (Save), only if it is newer than the cached copy by
// fetch time: an older snapshot never rolls the keys back. The snapshot is
// checked again first (NewSnapshot's rules). A cache that does not read is
// replaced.
func ImportSnapshot(root string, md Metadata) (Import, error) {
	imp := Import{Issuer: md.Meta.Issuer, FetchedAt: md.Meta.FetchedAt}
	_, ks, err := newSnapshot(md.Meta.Issuer, md.Discovery, md.JWKS, md.Meta.FetchedAt, max(md.Meta.Lifetime(), time.Second))
	if err != nil {
		return imp, err
	}
	imp.KeyIDs = ks.IDs()
	dir, err := Dir(root, md.Meta.Issuer)
	if err != nil {
		return imp, err
	}
	imp.Dir = dir
	if cached, err := Load(dir); err == nil && cached.Meta.Issuer == md.Meta.Issuer {
		imp.CachedFetchedAt = cached.Meta.FetchedAt
		if !md.Meta.FetchedAt.After(cached.Meta.FetchedAt) {
			return imp, nil
		}
	}
	m := md
	m.Meta.DiscoveryETag, m.Meta.JWKSETag = "", ""
	if err := Save(dir, m); err != nil {
		return imp, err
	}
	imp.Imported = true
	return imp, nil
}

// checkDiscovery checks a discovery document as both a refresh and a
// snapshot do: a JSON object whose issuer equals issuer byte for byte
// (role names it in the error) and whose jwks_uri is an absolute URL that
// checkScheme accepts. It returns the jwks_uri. Errors wrap
// errdef.ErrInvalid and quote the issuer's values truncated.
func checkDiscovery(b []byte, issuer, role string, allowLoopbackHTTP bool) (string, error) {
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &d); err != nil || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return "", fmt.Errorf("not a JSON object: %w", errdef.ErrInvalid)
	}
	if len(d.JWKSURI) > MaxJWKSURILength {
		return "", fmt.Errorf("jwks_uri of %d bytes, over %d: %w", len(d.JWKSURI), MaxJWKSURILength, errdef.ErrInvalid)
	}
	if d.Issuer != issuer {
		return "", fmt.Errorf("issuer %q is not %s %q: %w", truncate(d.Issuer, 200), role, issuer, errdef.ErrInvalid)
	}
	ju, err := url.Parse(d.JWKSURI)
	if err != nil || !ju.IsAbs() || ju.Host == "" || ju.User != nil {
		return "", fmt.Errorf("jwks_uri %q is not an absolute URL: %w", truncate(d.JWKSURI, 200), errdef.ErrInvalid)
	}
	if err := checkScheme(ju, allowLoopbackHTTP); err != nil {
		return "", fmt.Errorf("jwks_uri: %w", err)
	}
	return d.JWKSURI, nil
}
