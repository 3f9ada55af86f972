package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/internal/errdef"
)

// authorityStatusOutput is `offkit authority status --json`
// (schemas/output/authority-status.schema.json).
type authorityStatusOutput struct {
	Root    string                  `json:"root"`
	Issuers []authorityIssuerStatus `json:"issuers"`
}

type authorityIssuerStatus struct {
	Issuer           string    `json:"issuer"`
	Dir              string    `json:"dir"`
	KeyIDs           []string  `json:"keyIds"`
	FetchedAt        time.Time `json:"fetchedAt"`
	LifetimeSeconds  int64     `json:"lifetimeSeconds"`
	FreshUntil       time.Time `json:"freshUntil"`
	ValidUntil       time.Time `json:"validUntil"`
	State            string    `json:"state"`
	RemainingSeconds int64     `json:"remainingSeconds"`
	Reason           string    `json:"reason,omitempty"`
}

func (a *app) authorityCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "authority",
		Short: "The cached Authority metadata (discovery document and JWKS)",
	}
	c.AddCommand(a.authorityStatusCmd(), a.authorityRefreshCmd())
	return c
}

func (a *app) authorityStatusCmd() *cobra.Command {
	var root, issuer, tolerance string
	var noFallback, check bool
	cmd := &cobra.Command{
		Use:   "status --root ROOT [--issuer URL]",
		Short: "Show each cached issuer: key ids, fetched-at, valid-until, state",
		Long: `Show the Authority metadata cached under ROOT/authority/<issuer-host>/: the
issuer, its key ids, when it was fetched, until when it is fresh (its cache
lifetime) and valid (plus the offline cache tolerance), and its state: fresh,
within tolerance, or expired. Nothing is fetched or written.

Exit codes: 1 no cache for --issuer, 11 a cache that does not read, 9 with
--check when a cache has expired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			var res authority.Resilience
			if tolerance != "" {
				d, err := authority.ParseDuration(tolerance)
				if err != nil || d <= 0 {
					return usageError("--offline-cache-tolerance %q: not a positive hh:mm:ss or Go duration", tolerance)
				}
				res.OfflineCacheTolerance = authority.Duration(d)
			}
			if noFallback {
				f := false
				res.AllowOfflineCacheFallback = &f
			}
			var dirs []string
			if issuer != "" {
				d, err := authority.Dir(root, issuer)
				if err != nil {
					return err
				}
				dirs = []string{d}
			} else {
				var err error
				if dirs, err = authority.CachedDirs(root); err != nil {
					return err
				}
			}
			now := a.now()
			out := authorityStatusOutput{Root: root, Issuers: []authorityIssuerStatus{}}
			var expired []string
			for _, d := range dirs {
				md, err := authority.Load(d)
				if err != nil {
					return err
				}
				if issuer != "" && md.Meta.Issuer != issuer {
					return fmt.Errorf("authority cache %s holds issuer %q, not %q: %w", d, md.Meta.Issuer, issuer, errdef.ErrNotFound)
				}
				if want, err := authority.Dir(root, md.Meta.Issuer); err != nil || filepath.Clean(want) != filepath.Clean(d) {
					return fmt.Errorf("authority cache %s holds issuer %q, which belongs elsewhere: %w", d, md.Meta.Issuer, errdef.ErrInvalid)
				}
				st := authority.Evaluate(md.Meta.FetchedAt, md.Meta.Lifetime(), res, now)
				s := authorityIssuerStatus{
					Issuer: md.Meta.Issuer, Dir: d, KeyIDs: []string{}, FetchedAt: md.Meta.FetchedAt.UTC(),
					LifetimeSeconds: md.Meta.LifetimeSeconds, FreshUntil: st.FreshUntil.UTC(), ValidUntil: st.ValidUntil.UTC(),
					State: st.State.String(), RemainingSeconds: int64(st.Remaining / time.Second), Reason: st.Reason,
				}
				if ks, err := authority.ParseJWKS(md.JWKS); err == nil {
					s.KeyIDs = orEmpty(ks.IDs())
				} else {
					return fmt.Errorf("authority cache %s: %w", d, err)
				}
				if st.State == authority.Expired {
					expired = append(expired, md.Meta.Issuer)
				}
				out.Issuers = append(out.Issuers, s)
			}
			text := func(w io.Writer) { printAuthorityStatus(w, root, out) }
			if check && len(expired) > 0 {
				err := fmt.Errorf("authority metadata expired for %s: %w", strings.Join(expired, ", "), authority.ErrMetadataExpired)
				if a.json {
					return err // the error object is the output
				}
				if perr := a.emit(out, text); perr != nil {
					return perr
				}
				return err
			}
			return a.emit(out, text)
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	cmd.Flags().StringVar(&issuer, "issuer", "", "only this issuer (exact URL)")
	cmd.Flags().StringVar(&tolerance, "offline-cache-tolerance", "", "offline cache tolerance, hh:mm:ss (default 00:10:00)")
	cmd.Flags().BoolVar(&noFallback, "no-offline-cache-fallback", false, "as allowOfflineCacheFallback: false (valid until the lifetime ends)")
	cmd.Flags().BoolVar(&check, "check", false, "exit 9 when a cache has expired")
	return cmd
}

func printAuthorityStatus(w io.Writer, root string, out authorityStatusOutput) {
	if len(out.Issuers) == 0 {
		fmt.Fprintf(w, "site %s: no cached Authority metadata\n", root)
		return
	}
	for i, s := range out.Issuers {
		if i > 0 {
			fmt.Fprintln(w)
		}
		state := s.State
		if s.State != authority.Expired.String() {
			state += fmt.Sprintf(", %s left", time.Duration(s.RemainingSeconds)*time.Second)
		}
		fmt.Fprintf(w, "issuer       %s\n", s.Issuer)
		fmt.Fprintf(w, "state        %s\n", state)
		if s.Reason != "" {
			fmt.Fprintf(w, "reason       %s\n", s.Reason)
		}
		fmt.Fprintf(w, "key ids      %s\n", strings.Join(s.KeyIDs, ", "))
		fmt.Fprintf(w, "fetched at   %s\n", s.FetchedAt.Format(time.RFC3339))
		fmt.Fprintf(w, "fresh until  %s (lifetime %s)\n", s.FreshUntil.Format(time.RFC3339), time.Duration(s.LifetimeSeconds)*time.Second)
		fmt.Fprintf(w, "valid until  %s\n", s.ValidUntil.Format(time.RFC3339))
		fmt.Fprintf(w, "cache        %s\n", s.Dir)
	}
}
