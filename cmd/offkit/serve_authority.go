package main

import (
	"context"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/serve"
)

// serveAuthority builds the token guard of serve.yaml's `authority:` (when
// enabled) over the site's cache at root: it registers the /readyz check
// "authority" (failing, naming the issuer, while the metadata is missing or
// past its tolerance) and the guard's metrics, and starts its background
// refresher, which stops with ctx. It returns nil when authority is off.
func (a *app) serveAuthority(ctx context.Context, srv *serve.Server, root string, o *authority.Options) (*authority.Guard, error) {
	// Audit lines are written by every protected route (Basic included).
	srv.Metrics().MustRegister(authority.AuditLines)
	if o == nil || !o.Enabled {
		return nil, nil
	}
	client, err := authorityClient(o.CAFile, defaultHTTPTimeout)
	if err != nil {
		return nil, err
	}
	g, err := authority.NewGuard(*o, root, authority.GuardConfig{Client: client, Now: a.now, Log: a.log.With("part", "authority")})
	if err != nil {
		return nil, err
	}
	srv.Ready("authority", g.Ready)
	srv.Metrics().MustRegister(g)
	if err := g.Ready(); err != nil {
		a.log.Warn("authority metadata not usable yet: protected routes answer 503 until a refresh succeeds", "issuer", o.Issuer, "error", err)
	}
	go g.Run(ctx)
	return g, nil
}
