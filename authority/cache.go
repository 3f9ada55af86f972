package authority

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/atomicfile"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// Limits of the cache files and of the documents fetched from the issuer.
const (
	// MaxDocumentSize bounds a discovery document and a JWKS (1 MiB).
	MaxDocumentSize = 1 << 20
	// MaxMetaSize bounds meta.json (64 KiB).
	MaxMetaSize = 64 << 10
	// MaxJWKSURILength bounds the jwks_uri of a discovery document, which
	// meta.json records.
	MaxJWKSURILength = 4 << 10
	// MaxETagLength bounds an ETag a refresh keeps in meta.json for
	// revalidation; a longer one is not kept.
	MaxETagLength = 1 << 10
)

// Names of the cache files under ROOT/authority/<issuer-host>/.
const (
	DiscoveryFile = "discovery.json"
	JWKSFile      = "jwks.json"
	MetaFile      = "meta.json"
)

// Metadata is one snapshot of an issuer's metadata: the documents as
// fetched and what the cache records about them.
type Metadata struct {
	Discovery []byte // the discovery document, as served
	JWKS      []byte // the JWKS, as served
	Meta      Meta
}

// Meta is meta.json. It is written last, and names the digests of the two
// documents it belongs to, so a reader never pairs a new discovery document
// with an old JWKS (or the reverse) while a refresh writes.
type Meta struct {
	Issuer          string    `json:"issuer"`
	JWKSURI         string    `json:"jwksUri"`
	FetchedAt       time.Time `json:"fetchedAt"`
	LifetimeSeconds int64     `json:"lifetimeSeconds"`
	DiscoveryETag   string    `json:"discoveryEtag,omitempty"`
	JWKSETag        string    `json:"jwksEtag,omitempty"`
	DiscoverySHA256 string    `json:"discoverySha256"`
	JWKSSHA256      string    `json:"jwksSha256"`
}

// Lifetime is the cache lifetime the issuer announced (or the default).
func (m Meta) Lifetime() time.Duration { return time.Duration(m.LifetimeSeconds) * time.Second }

// Dir is the cache folder of issuer under root: ROOT/authority/<issuer-host>.
// The host is lowercased and keeps its port; anything but letters, digits,
// '.', '-', ':', '[' and ']' is refused.
func Dir(root, issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("issuer %q: no host: %w", issuer, errdef.ErrInvalid)
	}
	host := strings.ToLower(u.Host)
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return "", fmt.Errorf("issuer %q: host %q is not a safe folder name: %w", issuer, host, errdef.ErrInvalid)
		}
	}
	if host == "." || host == ".." {
		return "", fmt.Errorf("issuer %q: host %q: %w", issuer, host, errdef.ErrInvalid)
	}
	return filepath.Join(root, "authority", host), nil
}

// Save writes md into dir: the two documents first, meta.json last, each
// atomically (temp file, fsync, rename). Nothing is written when a file
// would be over the limit Load reads it with.
func Save(dir string, md Metadata) error {
	if len(md.Discovery) > MaxDocumentSize || len(md.JWKS) > MaxDocumentSize {
		return fmt.Errorf("authority cache %s: document over %d bytes: %w", dir, MaxDocumentSize, errdef.ErrInvalid)
	}
	meta, err := md.MetaJSON()
	if err != nil {
		return err
	}
	if len(meta) > MaxMetaSize {
		return fmt.Errorf("authority cache %s: %d bytes, over %d: %w", filepath.Join(dir, MetaFile), len(meta), MaxMetaSize, errdef.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("authority cache %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{DiscoveryFile, md.Discovery}, {JWKSFile, md.JWKS}, {MetaFile, meta}} {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("authority cache %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}

// MetaJSON is meta.json of md as Save writes it: Meta with the sha256 of
// both documents.
func (md Metadata) MetaJSON() ([]byte, error) {
	m := md.Meta
	m.DiscoverySHA256 = sum(md.Discovery)
	m.JWKSSHA256 = sum(md.JWKS)
	meta, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(meta, '\n'), nil
}

// Load reads the snapshot in dir. A missing cache wraps errdef.ErrNotFound;
// a file over its limit, or documents that do not match meta.json's digests
// (after a few rereads, in case a refresh was writing), wrap
// errdef.ErrInvalid.
func Load(dir string) (Metadata, error) {
	var err error
	for range 3 {
		var md Metadata
		md, err = load(dir)
		if !errors.Is(err, errTorn) {
			return md, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return Metadata{}, fmt.Errorf("authority cache %s: documents do not match meta.json: %w", dir, errdef.ErrInvalid)
}

var errTorn = errors.New("torn")

func load(dir string) (Metadata, error) {
	var md Metadata
	meta, err := limit.ReadRegularFile(filepath.Join(dir, MetaFile), MaxMetaSize)
	if err != nil {
		return md, err
	}
	dec := json.NewDecoder(bytes.NewReader(meta))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&md.Meta); err != nil {
		return md, fmt.Errorf("authority cache %s: %w: %w", filepath.Join(dir, MetaFile), errdef.ErrInvalid, err)
	}
	if md.Meta.FetchedAt.IsZero() || md.Meta.LifetimeSeconds < 0 || md.Meta.Issuer == "" {
		return md, fmt.Errorf("authority cache %s: issuer, fetchedAt and lifetimeSeconds are required: %w", filepath.Join(dir, MetaFile), errdef.ErrInvalid)
	}
	if md.Discovery, err = limit.ReadRegularFile(filepath.Join(dir, DiscoveryFile), MaxDocumentSize); err != nil {
		return md, err
	}
	if md.JWKS, err = limit.ReadRegularFile(filepath.Join(dir, JWKSFile), MaxDocumentSize); err != nil {
		return md, err
	}
	if sum(md.Discovery) != md.Meta.DiscoverySHA256 || sum(md.JWKS) != md.Meta.JWKSSHA256 {
		return md, errTorn
	}
	return md, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// State is how usable cached metadata is at a given time.
type State int

const (
	// Fresh: age ≤ lifetime.
	Fresh State = iota
	// WithinTolerance: lifetime < age ≤ lifetime + offlineCacheTolerance
	// (only with allowOfflineCacheFallback).
	WithinTolerance
	// Expired: beyond; protected routes fail closed.
	Expired
)

func (s State) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case WithinTolerance:
		return "within tolerance"
	}
	return "expired"
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is the state of a snapshot at a time.
type Status struct {
	State State
	// Age is now − fetchedAt.
	Age time.Duration
	// FreshUntil is fetchedAt + lifetime; ValidUntil adds the tolerance
	// (equal to FreshUntil when the fallback is off).
	FreshUntil, ValidUntil time.Time
	// Remaining is ValidUntil − now, 0 once expired.
	Remaining time.Duration
	// Reason says why, in words, when not fresh.
	Reason string
}

// MaxFutureFetch is how far in the future a fetch time may lie (clock skew
// between the fetching host and this one) before the snapshot is refused.
const MaxFutureFetch = 5 * time.Minute

// Evaluate gives the state of metadata fetched at fetchedAt with the given
// lifetime, at now, under r (a pure function):
//
//	age ≤ lifetime                        fresh
//	age ≤ lifetime + tolerance            within tolerance (only with allowOfflineCacheFallback)
//	otherwise                             expired
//
// A fetch time more than MaxFutureFetch ahead of now is expired: a snapshot
// from the future would otherwise stay fresh for as long as it claims.
func Evaluate(fetchedAt time.Time, lifetime time.Duration, r Resilience, now time.Time) Status {
	tol := r.Tolerance()
	st := Status{
		Age:        now.Sub(fetchedAt),
		FreshUntil: fetchedAt.Add(lifetime),
		ValidUntil: fetchedAt.Add(lifetime + tol),
	}
	switch {
	case fetchedAt.Sub(now) > MaxFutureFetch:
		st.State = Expired
		st.Reason = fmt.Sprintf("metadata fetched at %s, in the future (clock at %s)", fetchedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		return st
	case !now.After(st.FreshUntil):
		st.State = Fresh
	case tol > 0 && !now.After(st.ValidUntil):
		st.State = WithinTolerance
		st.Reason = fmt.Sprintf("metadata is %s old, past its lifetime %s, within the offline tolerance %s", st.Age.Round(time.Second), lifetime, tol)
	default:
		st.State = Expired
		if tol > 0 {
			st.Reason = fmt.Sprintf("metadata is %s old, past its lifetime %s and the offline tolerance %s", st.Age.Round(time.Second), lifetime, tol)
		} else {
			st.Reason = fmt.Sprintf("metadata is %s old, past its lifetime %s (offline cache fallback off)", st.Age.Round(time.Second), lifetime)
		}
		return st
	}
	st.Remaining = st.ValidUntil.Sub(now)
	return st
}

// CachedDirs lists the issuer folders under ROOT/authority, sorted; none
// when the folder does not exist.
func CachedDirs(root string) ([]string, error) {
	base := filepath.Join(root, "authority")
	ents, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("authority cache %s: %w", base, err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, filepath.Join(base, e.Name()))
		}
	}
	return dirs, nil
}
