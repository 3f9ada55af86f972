package kit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/manifest"
)

// collectAuthority makes the kit entries of the spec's Authority snapshots:
// authority/<issuer-host>/{discovery.json,jwks.json,meta.json} (role
// authority; meta.json as the site's cache writes it) and the manifest's
// authority[] records, sorted by issuer. A saved pair is checked as a refresh
// checks what it fetches (authority.NewSnapshot: discovery's issuer equals
// the entry's, jwks_uri https or loopback http, a JWKS of public keys only);
// a snapshot entry is fetched now from its issuer (https, or http on
// loopback) with the default retry ladder. Errors name the spec field and
// wrap errdef.ErrInvalid (exit 11) for a pair that breaks a rule.
func collectAuthority(ctx context.Context, spec *manifest.Spec, dir string, now func() time.Time) ([]source, []manifest.Authority, error) {
	var srcs []source
	var recs []manifest.Authority
	seen := map[string]string{}
	for i, a := range spec.Authority {
		field := fmt.Sprintf("spec /authority/%d", i)
		kdir, err := manifest.AuthorityDir(a.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("%s/issuer: %v: %w", field, err, errdef.ErrInvalid)
		}
		if prev, ok := seen[kdir]; ok {
			return nil, nil, fmt.Errorf("%s/issuer %q: %s already carries a snapshot for the host of %s: %w", field, a.Issuer, prev, a.Issuer, errdef.ErrInvalid)
		}
		seen[kdir] = field
		var md authority.Metadata
		if a.Snapshot {
			if a.Discovery != "" || a.JWKS != "" || a.FetchedAt != nil {
				return nil, nil, fmt.Errorf("%s: snapshot: true takes no discovery, jwks or fetchedAt: %w", field, errdef.ErrInvalid)
			}
			md, err = fetchSnapshot(ctx, a.Issuer, now)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: snapshot of %s: %w", field, a.Issuer, err)
			}
		} else {
			if a.Discovery == "" || a.JWKS == "" || a.FetchedAt == nil {
				return nil, nil, fmt.Errorf("%s: a saved snapshot needs discovery, jwks and fetchedAt (or snapshot: true): %w", field, errdef.ErrInvalid)
			}
			var life time.Duration
			if a.Lifetime != "" {
				if life, err = authority.ParseDuration(a.Lifetime); err != nil || life <= 0 {
					return nil, nil, fmt.Errorf("%s/lifetime %q: not a positive hh:mm:ss: %w", field, a.Lifetime, errdef.ErrInvalid)
				}
			}
			docs := make([][]byte, 2)
			for j, f := range []struct{ key, name string }{{"discovery", a.Discovery}, {"jwks", a.JWKS}} {
				p := f.name
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if docs[j], err = limit.ReadRegularFile(p, authority.MaxDocumentSize); err != nil {
					return nil, nil, fmt.Errorf("%s/%s: %w", field, f.key, err)
				}
			}
			if md, err = authority.NewSnapshot(a.Issuer, docs[0], docs[1], *a.FetchedAt, life); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", field, err)
			}
		}
		meta, err := md.MetaJSON()
		if err != nil {
			return nil, nil, err
		}
		for _, f := range []struct {
			name string
			data []byte
		}{{authority.DiscoveryFile, md.Discovery}, {authority.JWKSFile, md.JWKS}, {authority.MetaFile, meta}} {
			sum := sha256.Sum256(f.data)
			srcs = append(srcs, source{
				entry: manifest.Entry{Path: path.Join(kdir, f.name), Role: manifest.RoleAuthority, Size: int64(len(f.data)), SHA256: hex.EncodeToString(sum[:])},
				file:  fmt.Sprintf("%s (%s of %s)", field, f.name, a.Issuer),
				data:  f.data,
			})
		}
		recs = append(recs, manifest.Authority{Issuer: md.Meta.Issuer, FetchedAt: md.Meta.FetchedAt})
	}
	return srcs, recs, nil
}

// fetchSnapshot fetches issuer's metadata now into a scratch cache and
// returns it (no offline fallback: there is no cache to fall back on).
func fetchSnapshot(ctx context.Context, issuer string, now func() time.Time) (authority.Metadata, error) {
	tmp, err := os.MkdirTemp("", "offkit-authority-")
	if err != nil {
		return authority.Metadata{}, err
	}
	defer os.RemoveAll(tmp)
	o := authority.Options{Issuer: issuer}
	if u, err := url.Parse(issuer); err == nil && u.Scheme == "http" {
		o.AllowLoopbackHTTP = true // Validate still refuses http off loopback
	}
	f := false
	o.Resilience.AllowOfflineCacheFallback = &f
	r := &authority.Refresher{Options: o, Root: tmp, Now: now}
	rep, err := r.Refresh(ctx)
	if err != nil {
		return authority.Metadata{}, err
	}
	md, err := authority.Load(rep.Dir)
	if err != nil {
		return md, err
	}
	md.Meta.FetchedAt = md.Meta.FetchedAt.UTC().Truncate(time.Second)
	md.Meta.DiscoveryETag, md.Meta.JWKSETag = "", ""
	return md, nil
}
