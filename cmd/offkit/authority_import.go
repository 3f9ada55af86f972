package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/site"
)

// auditEventImport is the audit.log event of a kit snapshot's import.
const auditEventImport = "authority-import"

// importAuthority imports the Authority snapshots the kit just installed
// carries (its manifest's authority[]; the files are in the new generation
// under authority/<issuer-host>/) into the site's cache,
// ROOT/authority/<issuer-host>/, each only if it is newer by fetch time than
// the cached copy: an older kit never rolls the keys back. It runs under
// the install's site lock, after the install committed, and writes one
// audit.log line per snapshot (outcome imported, kept-newer-cache or
// failed). The import is done here, not in package site, so that site
// stays free of the HTTP code of package authority.
func (a *app) importAuthority(s *site.Site, root string, res *site.InstallResult) error {
	gen := filepath.Join(root, "generations", strconv.Itoa(res.Generation))
	var firstErr error
	for _, rec := range res.Authority {
		rel, err := manifest.AuthorityDir(rec.Issuer)
		fields := map[string]any{"issuer": rec.Issuer, "kit": res.Name, "kitVersion": res.Version,
			"fetchedAt": rec.FetchedAt.UTC().Format(time.RFC3339)}
		var imp authority.Import
		if err == nil {
			var md authority.Metadata
			md, err = authority.Load(filepath.Join(gen, filepath.FromSlash(rel)))
			switch {
			case err != nil:
			case md.Meta.Issuer != rec.Issuer || !md.Meta.FetchedAt.Equal(rec.FetchedAt):
				err = fmt.Errorf("kit %s: snapshot %s is of %q fetched at %s, not what authority[] says: %w",
					res.Name, rel, md.Meta.Issuer, md.Meta.FetchedAt.Format(time.RFC3339), errdef.ErrInvalid)
			default:
				imp, err = authority.ImportSnapshot(root, md)
			}
		}
		switch {
		case err != nil:
			fields["outcome"] = "failed"
			fields["error"] = err.Error()
			if firstErr == nil {
				firstErr = fmt.Errorf("importing the Authority snapshot of %s: %w", rec.Issuer, err)
			}
		case imp.Imported:
			fields["outcome"] = "imported"
			fields["keyIds"] = orEmpty(imp.KeyIDs)
			a.log.Info("authority snapshot imported", "issuer", rec.Issuer, "fetchedAt", fields["fetchedAt"], "cache", imp.Dir)
		default:
			fields["outcome"] = "kept-newer-cache"
			a.log.Info("authority snapshot not imported: the cache is as new or newer", "issuer", rec.Issuer,
				"fetchedAt", fields["fetchedAt"], "cachedFetchedAt", imp.CachedFetchedAt.UTC().Format(time.RFC3339))
		}
		if !imp.CachedFetchedAt.IsZero() {
			fields["cachedFetchedAt"] = imp.CachedFetchedAt.UTC().Format(time.RFC3339)
		}
		if aerr := s.Audit(a.now(), auditEventImport, fields); aerr != nil && firstErr == nil {
			firstErr = fmt.Errorf("writing %s: %w", filepath.Join(root, "audit.log"), aerr)
		}
	}
	return firstErr
}
