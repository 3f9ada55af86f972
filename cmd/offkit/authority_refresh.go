package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/site"
)

// Outcomes of `offkit authority refresh`, in its output and audit line.
const (
	refreshFresh       = "fresh"                 // new documents fetched
	refreshRevalidated = "revalidated"           // 304: the cached documents still hold
	refreshKept        = "kept-within-tolerance" // issuer unreachable, cache within tolerance
	refreshExpired     = "expired"               // issuer unreachable, cache beyond tolerance (exit 9)
	refreshRefused     = "refused"               // the issuer served an invalid document (exit 11)
	refreshFailed      = "failed"                // unreachable without a usable cache, or another failure
	auditEventRefresh  = "authority-refresh"     // the audit.log event
	maxAuthorityConfig = 64 << 10                // --config is read bounded
	maxCAFile          = 1 << 20                 // --ca-file is read bounded
	defaultHTTPTimeout = 30 * time.Second        // one request, all included
	dialTimeout        = 10 * time.Second        // connect
	tlsHandshakeTime   = 10 * time.Second        // TLS handshake
	responseHeaderTime = 15 * time.Second        // headers after the request is sent
)

// authorityRefreshOutput is `offkit authority refresh --json`
// (schemas/output/authority-refresh.schema.json).
type authorityRefreshOutput struct {
	Root             string     `json:"root"`
	Issuer           string     `json:"issuer"`
	Dir              string     `json:"dir"`
	Outcome          string     `json:"outcome"`
	Attempts         int        `json:"attempts"`
	KeyIDs           []string   `json:"keyIds"`
	FetchedAt        *time.Time `json:"fetchedAt,omitempty"`
	LifetimeSeconds  int64      `json:"lifetimeSeconds"`
	FreshUntil       *time.Time `json:"freshUntil,omitempty"`
	ValidUntil       *time.Time `json:"validUntil,omitempty"`
	State            string     `json:"state,omitempty"`
	RemainingSeconds int64      `json:"remainingSeconds"`
	Warning          string     `json:"warning,omitempty"`
}

func (a *app) authorityRefreshCmd() *cobra.Command {
	var root, issuer, config, caFile, tolerance, delays, lifetime string
	var loopbackHTTP, noRetries, noFallback bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh --root ROOT --issuer URL",
		Short: "Fetch the issuer's discovery document and JWKS into the site's cache",
		Long: `Fetch ISSUER/.well-known/openid-configuration and the JWKS it names into
ROOT/authority/<issuer-host>/, revalidating with the cached ETags (If-None-Match),
and append one "authority-refresh" line to ROOT/audit.log.

Discovery's issuer must equal --issuer exactly and its jwks_uri must be https
(http on a loopback host only with --allow-loopback-http). TLS certificates are
verified against the system's roots and --ca-file. A failed try (network error,
5xx, 408, 429) is retried after each delay of the ladder (default 00:00:01,
00:00:02, 00:00:05). If every try fails, the cache is kept while it is within its
lifetime plus the offline cache tolerance (default 00:10:00): exit 0 with a
warning; beyond it the metadata has expired: exit 9.

--config reads the runbook's keys (issuer, allowLoopbackHttp, cacheLifetime,
resilience {enableRetries, retryDelays, allowOfflineCacheFallback,
offlineCacheTolerance}) from a YAML or JSON file, either at its top level or
under "authority:" (as in serve.yaml); flags override it.

Exit codes: 0 fresh, revalidated, or kept within tolerance (with a warning);
9 the issuer is unreachable and the cache is past its tolerance; 11 the issuer
served an invalid document (another issuer, an http jwks_uri, a bad JWKS) or a
bad command line; 1 ROOT is not a site, or the issuer is unreachable and there
is no usable cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			var o authority.Options
			if config != "" {
				var err error
				if o, err = readAuthorityConfig(config); err != nil {
					return err
				}
			}
			if issuer != "" {
				o.Issuer = issuer
			}
			if o.Issuer == "" {
				return usageError("--issuer is required (or issuer in --config)")
			}
			if cmd.Flags().Changed("allow-loopback-http") {
				o.AllowLoopbackHTTP = loopbackHTTP
			}
			if err := positiveDurationFlag("offline-cache-tolerance", tolerance, &o.Resilience.OfflineCacheTolerance); err != nil {
				return err
			}
			if err := positiveDurationFlag("cache-lifetime", lifetime, &o.CacheLifetime); err != nil {
				return err
			}
			if delays != "" {
				o.Resilience.RetryDelays = nil
				for _, s := range strings.Split(delays, ",") {
					d, err := authority.ParseDuration(s)
					if err != nil {
						return usageError("--retry-delays %q: %q is not hh:mm:ss or a Go duration", delays, s)
					}
					o.Resilience.RetryDelays = append(o.Resilience.RetryDelays, authority.Duration(d))
				}
			}
			if noRetries {
				f := false
				o.Resilience.EnableRetries = &f
			}
			if noFallback {
				f := false
				o.Resilience.AllowOfflineCacheFallback = &f
			}
			if timeout <= 0 {
				return usageError("--timeout %s: not positive", timeout)
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if caFile == "" {
				caFile = o.CAFile
			}
			client, err := authorityClient(caFile, timeout)
			if err != nil {
				return err
			}
			if err := checkSite(root); err != nil {
				return err
			}
			// The site lock serialises refreshes with each other and with
			// installs; readers (serve, status) read the cache without it.
			s, err := site.Open(root, false)
			if err != nil {
				return err
			}
			defer s.Close()
			r := &authority.Refresher{Options: o, Root: root, Client: client, Now: a.now}
			rep, rerr := r.Refresh(cmd.Context())
			out := refreshOutput(root, o, rep, rerr)
			if err := s.Audit(a.now(), auditEventRefresh, refreshAudit(out, rep, rerr)); err != nil {
				return fmt.Errorf("writing %s/audit.log: %w", root, err)
			}
			if rerr != nil {
				if !a.json && out.FetchedAt != nil {
					// What the cache holds still helps whoever reads the error.
					printAuthorityRefresh(a.stdout, out)
				}
				return rerr
			}
			if out.Warning != "" {
				fmt.Fprintf(a.stderr, "offkit: warning: %s\n", out.Warning)
			}
			return a.emit(out, func(w io.Writer) { printAuthorityRefresh(w, out) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "", "site root")
	f.StringVar(&issuer, "issuer", "", "the issuer URL, exactly as its discovery document and tokens name it")
	f.StringVar(&config, "config", "", "YAML or JSON file with the runbook's authority keys (flags override it)")
	f.StringVar(&caFile, "ca-file", "", "PEM file of CA certificates trusted besides the system's (the site CA)")
	f.BoolVar(&loopbackHTTP, "allow-loopback-http", false, "accept http:// issuer and jwks_uri on a loopback host (tests, a local issuer)")
	f.StringVar(&delays, "retry-delays", "", "comma-separated retry ladder, hh:mm:ss or Go durations (default 00:00:01,00:00:02,00:00:05)")
	f.BoolVar(&noRetries, "no-retries", false, "as enableRetries: false (one try)")
	f.BoolVar(&noFallback, "no-offline-cache-fallback", false, "as allowOfflineCacheFallback: false (an unreachable issuer fails)")
	f.StringVar(&tolerance, "offline-cache-tolerance", "", "offline cache tolerance, hh:mm:ss (default 00:10:00)")
	f.StringVar(&lifetime, "cache-lifetime", "", "cache lifetime when the issuer sends no max-age, hh:mm:ss (default 00:10:00)")
	f.DurationVar(&timeout, "timeout", defaultHTTPTimeout, "limit of each request (connect, TLS, headers and body)")
	return cmd
}

// positiveDurationFlag sets *d from the value s of --name when s is set: a
// positive hh:mm:ss or Go duration, a usage error otherwise.
func positiveDurationFlag(name, s string, d *authority.Duration) error {
	if s == "" {
		return nil
	}
	v, err := authority.ParseDuration(s)
	if err != nil || v <= 0 {
		return usageError("--%s %q: not a positive hh:mm:ss or Go duration", name, s)
	}
	*d = authority.Duration(v)
	return nil
}

// readAuthorityConfig reads the runbook's keys from a YAML or JSON file:
// the options object itself, or an object with an "authority" key holding
// it. Unknown keys inside the options are refused.
func readAuthorityConfig(name string) (authority.Options, error) {
	var o authority.Options
	b, err := limit.ReadFile(name, maxAuthorityConfig)
	if err != nil {
		return o, fmt.Errorf("--config %w", err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return o, fmt.Errorf("--config %s: not YAML or JSON: %w: %w", name, errdef.ErrInvalid, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil || top == nil {
		return o, fmt.Errorf("--config %s: not an object: %w", name, errdef.ErrInvalid)
	}
	if inner, ok := top["authority"]; ok {
		j = inner
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("--config %s: %w: %w", name, errdef.ErrInvalid, err)
	}
	return o, nil
}

// authorityClient is the HTTP client of a refresh: TLS verified (system
// roots plus caFile), TLS 1.2 at least, bounded connect, handshake, header
// and overall times; proxies from the environment (HTTPS_PROXY, NO_PROXY).
func authorityClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := limit.ReadFile(caFile, maxCAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate: %w", caFile, errdef.ErrInvalid)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   tlsHandshakeTime,
		ResponseHeaderTimeout: min(responseHeaderTime, timeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// refreshOutput describes what a refresh did and what the cache holds now.
func refreshOutput(root string, o authority.Options, rep authority.Report, err error) authorityRefreshOutput {
	out := authorityRefreshOutput{Root: root, Issuer: o.Issuer, Dir: rep.Dir, Attempts: rep.Attempts, KeyIDs: orEmpty(rep.KeyIDs)}
	switch {
	case err == nil && rep.Revalidated:
		out.Outcome = refreshRevalidated
	case err == nil && rep.FellBack:
		out.Outcome = refreshKept
	case err == nil:
		out.Outcome = refreshFresh
	case errors.Is(err, authority.ErrMetadataExpired):
		out.Outcome = refreshExpired
	case errors.Is(err, errdef.ErrInvalid):
		out.Outcome = refreshRefused
	default:
		out.Outcome = refreshFailed
	}
	if !rep.Meta.FetchedAt.IsZero() {
		fa, fu, vu := rep.Meta.FetchedAt.UTC(), rep.Status.FreshUntil.UTC(), rep.Status.ValidUntil.UTC()
		out.FetchedAt, out.FreshUntil, out.ValidUntil = &fa, &fu, &vu
		out.LifetimeSeconds = rep.Meta.LifetimeSeconds
		out.State = rep.Status.State.String()
		out.RemainingSeconds = int64(rep.Status.Remaining / time.Second)
	}
	if out.Outcome == refreshKept {
		out.Warning = fmt.Sprintf("issuer %s unreachable after %d tries (%v); keeping the cached metadata fetched at %s: %s, usable until %s (%s left)",
			o.Issuer, rep.Attempts, rep.FetchErr, out.FetchedAt.Format(time.RFC3339), rep.Status.State, out.ValidUntil.Format(time.RFC3339),
			time.Duration(out.RemainingSeconds)*time.Second)
	}
	return out
}

// refreshAudit is the audit.log record of a refresh.
func refreshAudit(out authorityRefreshOutput, rep authority.Report, err error) map[string]any {
	rec := map[string]any{"issuer": out.Issuer, "outcome": out.Outcome, "attempts": out.Attempts, "keyIds": out.KeyIDs}
	if out.FetchedAt != nil {
		rec["fetchedAt"] = out.FetchedAt.Format(time.RFC3339)
		rec["validUntil"] = out.ValidUntil.Format(time.RFC3339)
	}
	if err != nil {
		rec["error"] = err.Error()
	}
	if rep.FetchErr != nil && (err == nil || !strings.Contains(err.Error(), rep.FetchErr.Error())) {
		rec["fetchError"] = rep.FetchErr.Error()
	}
	return rec
}

func printAuthorityRefresh(w io.Writer, out authorityRefreshOutput) {
	fmt.Fprintf(w, "issuer       %s\n", out.Issuer)
	fmt.Fprintf(w, "outcome      %s\n", out.Outcome)
	fmt.Fprintf(w, "tries        %d\n", out.Attempts)
	if out.FetchedAt == nil {
		return
	}
	state := out.State
	if out.State != authority.Expired.String() {
		state += fmt.Sprintf(", %s left", time.Duration(out.RemainingSeconds)*time.Second)
	}
	fmt.Fprintf(w, "state        %s\n", state)
	fmt.Fprintf(w, "key ids      %s\n", strings.Join(out.KeyIDs, ", "))
	fmt.Fprintf(w, "fetched at   %s\n", out.FetchedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "fresh until  %s (lifetime %s)\n", out.FreshUntil.Format(time.RFC3339), time.Duration(out.LifetimeSeconds)*time.Second)
	fmt.Fprintf(w, "valid until  %s\n", out.ValidUntil.Format(time.RFC3339))
	fmt.Fprintf(w, "cache        %s\n", out.Dir)
}
