package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
	"github.com/offkit/offkit/mirror/mirrorserve"
	"github.com/offkit/offkit/registry"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/site"
)

func (a *app) serveCmd() *cobra.Command {
	var root, listen, healthListen, configPath, tlsCert, tlsKey, stripPrefix string
	var keepHost bool
	cmd := &cobra.Command{
		Use:   "serve --root ROOT [--listen 127.0.0.1:8080] [--health-listen ADDR] [--config serve.yaml]",
		Short: "Serve the installed site: OCI registry (/v2), rules, dashboards, feed mirrors, health and metrics",
		Long: `Serve the installed site read-only over HTTP:

  /v2/…           the images of the installed kits (OCI distribution spec, pull side)
  /rules/…        the installed Prometheus rule files, with a JSON index
  /dashboards/…   the installed Grafana dashboards, with a JSON index
  /buildid/…      debuginfod: the installed .build-id tree (debuginfo, executable, section)
  /concelier/…    the Concelier feed mirror: exports/index.json, exports/mirror/<domain>/…
  /excititor/…    the Excititor feed mirror: mirror/domains, mirror/<domain>/index, exports
  /healthz /readyz /metrics

A new generation (after install or rollback) is served from the next request on,
without restart; downloads in flight finish. SIGTERM or SIGINT shuts down gracefully.

Limits (serve.yaml): at most maxConnections (1024) connections, maxConnectionsPerClient
(64) from one client address; an idle keep-alive connection is closed after idleTimeout
(15s), a client that takes no 64 KiB of a response within writeStallTimeout (30s) is cut
off. --health-listen serves /healthz, /readyz and /metrics alone on a second address
with slots of its own, so probes and scrapes answer while clients hold every slot.

An expired kit keeps serving and /readyz stays ready (offkit_kit_expired is 1 on
/metrics); readiness.failOnExpiredKit in serve.yaml makes /readyz fail naming it.

authority: in serve.yaml (the Authority runbook's keys; docs/authority.md) checks
Bearer and DPoP tokens on the protected mirror routes against the issuer metadata
cached in ROOT/authority/, refreshed in the background at its cache lifetime; past
its lifetime and offlineCacheTolerance, tokens get 503 and /readyz fails naming the
issuer. One audit line per protected request (logger offkit.authorization.audit).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			cfg := serve.Config{}
			if configPath != "" {
				c, err := serve.LoadConfig(configPath)
				if err != nil {
					return err
				}
				cfg = *c
			}
			// Serve bounds its own shutdown (shutdownGrace); a second
			// signal still stops it at once.
			a.drain = time.Hour
			if cmd.Flags().Changed("listen") || cfg.Listen == "" {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("health-listen") {
				cfg.HealthListen = healthListen
			}
			if tlsCert != "" || tlsKey != "" {
				if tlsCert == "" || tlsKey == "" {
					return usageError("--tls-cert and --tls-key go together")
				}
				cfg.TLS = &serve.TLSConfig{Cert: tlsCert, Key: tlsKey}
			}
			if cmd.Flags().Changed("strip-prefix") {
				cfg.Registry.StripPrefix = stripPrefix
			}
			if cmd.Flags().Changed("keep-host") {
				cfg.Registry.KeepHost = keepHost
			}
			if err := checkSite(root); err != nil {
				return err
			}
			view := site.NewView(root)
			if _, err := view.Generation(); err != nil {
				a.log.Warn("nothing installed yet: serving empty trees until the first install", "root", root)
			}
			srv := serve.New(cfg, a.log)
			srv.Ready("site", func() error {
				_, err := view.Generation()
				return err
			})
			if !cfg.Registry.Disabled {
				reg := registry.New(view, registry.Options{
					Mapping: reponame.Mapping{KeepHost: cfg.Registry.KeepHost, StripPrefix: cfg.Registry.StripPrefix},
					Log:     a.log,
				})
				srv.Handle("/v2/", "registry", reg)
				srv.Ready("registry", reg.Ready)
				srv.Metrics().MustRegister(reg)
			}
			guard, err := a.serveAuthority(cmd.Context(), srv, root, cfg.Authority)
			if err != nil {
				return err
			}
			srv.Kits(serveKits(view.State, a.now))
			for _, part := range []string{"rules", "dashboards"} {
				srv.Handle("/"+part+"/", part, serve.Tree(part, view))
			}
			mopts := mirrorserve.Options{Config: cfg.Mirror, Audit: a.log}
			if guard != nil {
				mopts.Tokens = guard // Bearer and DPoP on the protected mirror domains
			}
			mir, err := mirrorserve.New(view, mopts)
			if err != nil {
				return err
			}
			for _, prefix := range mirrorserve.Prefixes {
				srv.Handle(prefix, "mirror", mir)
			}
			srv.Metrics().MustRegister(mir)
			dbg := debuginfod.NewHandler(view)
			srv.Handle(debuginfod.Prefix, "buildid", dbg)
			srv.Metrics().MustRegister(dbg)
			if err := srv.Run(cmd.Context()); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	cmd.Flags().StringVar(&listen, "listen", serve.DefaultListen, "address to listen on")
	cmd.Flags().StringVar(&healthListen, "health-listen", "", "second address serving only /healthz, /readyz and /metrics, with connection slots of its own")
	cmd.Flags().StringVar(&configPath, "config", "", "serve.yaml (schema: schemas/serve.schema.json)")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "TLS certificate (PEM)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "TLS private key (PEM)")
	cmd.Flags().StringVar(&stripPrefix, "strip-prefix", "", `repository prefix to drop from served names ("stellaops/")`)
	cmd.Flags().BoolVar(&keepHost, "keep-host", false, "serve names with their registry host")
	return cmd
}

// serveKits lists the site's active kits for serve's /metrics and /readyz,
// their age, staleness and expiry decided by site.KitState at now().
func serveKits(state func() (*site.State, error), now func() time.Time) func() (int, []serve.Kit, error) {
	return func() (int, []serve.Kit, error) {
		st, err := state()
		if err != nil {
			return 0, nil, err
		}
		t := now()
		kits := make([]serve.Kit, 0, len(st.Kits))
		for _, k := range st.Kits {
			sk := serve.Kit{Name: k.Name, Version: k.Version, Age: k.Age(t), Stale: k.Stale(t), Expired: k.Expired(t)}
			if k.ExpiresAt != nil {
				sk.ExpiresAt = *k.ExpiresAt
			}
			kits = append(kits, sk)
		}
		return st.Generation, kits, nil
	}
}

// siteMarks are the names of which a site root holds at least one once it
// was installed into: a folder with none of them is not a site, and serving
// it would serve nothing (a mistyped --root).
var siteMarks = []string{"generations", "state.json", "current"}

// checkSite returns an error (exit 1) unless root is a site root.
func checkSite(root string) error {
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("site root %s: %w", root, errdef.ErrNotFound)
	case err != nil:
		return fmt.Errorf("site root %s: %w", root, err)
	case !st.IsDir():
		return fmt.Errorf("site root %s: not a folder: %w", root, errdef.ErrInvalid)
	}
	for _, name := range siteMarks {
		_, err := os.Lstat(filepath.Join(root, name))
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("site root %s: %w", root, err)
		}
	}
	return fmt.Errorf("site root %s: not a site (no generations/, state.json or current: install a kit first): %w", root, errdef.ErrNotFound)
}
