package mirrorserve

import (
	"fmt"
	"regexp"

	"github.com/offkit/offkit/internal/errdef"
)

// Config is serve.yaml's `mirror:` section: the knobs of the Concelier and
// Excititor mirror runbook, one Part each. The zero value serves every
// installed export, without authentication or rate limits.
type Config struct {
	Concelier Part `json:"concelier,omitzero"`
	Excititor Part `json:"excititor,omitzero"`
	// MaxClients bounds the table of per-client rate-limit budgets
	// (DefaultMaxClients); past it the least recently seen client is
	// forgotten.
	MaxClients int `json:"maxClients,omitempty"`
}

// Part configures one mirror (Concelier or Excititor).
type Part struct {
	// Enabled turns the part off when false (default on: the installed
	// exports are served).
	Enabled *bool `json:"enabled,omitempty"`
	// ActiveExportID serves this export instead of the newest installed
	// (the runbook's ACTIVEEXPORTID).
	ActiveExportID string `json:"activeExportId,omitempty"`
	// RequireAuthentication is the default of every domain and the rule of
	// the part's index routes.
	RequireAuthentication bool `json:"requireAuthentication,omitempty"`
	// MaxIndexRequestsPerHour is each client's budget for the index routes;
	// domains inherit it as their download budget unless they set
	// MaxDownloadRequestsPerHour. 0: no limit.
	MaxIndexRequestsPerHour int `json:"maxIndexRequestsPerHour,omitempty"`
	// Htpasswd is a bcrypt htpasswd file (`htpasswd -B`) whose users may
	// read every domain (and the index routes) with Basic authentication.
	Htpasswd string `json:"htpasswd,omitempty"`
	// Domains configure single domains; a served domain not listed takes
	// the part's values.
	Domains []Domain `json:"domains,omitempty"`
}

// Domain configures one domain of a part.
type Domain struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
	// RequireAuthentication overrides the part's.
	RequireAuthentication *bool `json:"requireAuthentication,omitempty"`
	// MaxDownloadRequestsPerHour is each client's budget for the domain's
	// downloads; unset: the part's MaxIndexRequestsPerHour; 0: no limit.
	MaxDownloadRequestsPerHour *int `json:"maxDownloadRequestsPerHour,omitempty"`
	// Htpasswd is a bcrypt htpasswd file whose users may read this domain
	// (besides the part's file).
	Htpasswd string `json:"htpasswd,omitempty"`
}

// DefaultMaxClients bounds the rate-limit table when MaxClients is 0.
const DefaultMaxClients = 65536

// enabled reports whether the part is served.
func (p Part) enabled() bool { return p.Enabled == nil || *p.Enabled }

// domain returns the settings of domain id (the part's defaults when it is
// not listed).
func (p Part) domain(id string) Domain {
	for _, d := range p.Domains {
		if d.ID == id {
			return d
		}
	}
	return Domain{ID: id}
}

// requireAuth reports whether domain id needs authentication.
func (p Part) requireAuth(id string) bool {
	if d := p.domain(id); d.RequireAuthentication != nil {
		return *d.RequireAuthentication
	}
	return p.RequireAuthentication
}

// downloadBudget is domain id's download budget per hour (0: no limit).
func (p Part) downloadBudget(id string) int {
	if d := p.domain(id); d.MaxDownloadRequestsPerHour != nil {
		return *d.MaxDownloadRequestsPerHour
	}
	return p.MaxIndexRequestsPerHour
}

// domainID is what a domain id, export id, export key or format may be:
// a safe single path segment.
var domainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// validName reports whether s may name a domain, export, key or format.
func validName(s string) bool { return domainID.MatchString(s) && s != "." && s != ".." }

// Validate checks the values the schema cannot: names, duplicates and
// budgets.
func (c Config) Validate() error {
	if c.MaxClients < 0 {
		return fmt.Errorf("mirror.maxClients: %d is negative: %w", c.MaxClients, errdef.ErrInvalid)
	}
	for _, kp := range []struct {
		kind string
		p    Part
	}{{Concelier, c.Concelier}, {Excititor, c.Excititor}} {
		at := "mirror." + kp.kind
		if kp.p.ActiveExportID != "" && !validName(kp.p.ActiveExportID) {
			return fmt.Errorf("%s.activeExportId: %q is not a valid export id: %w", at, kp.p.ActiveExportID, errdef.ErrInvalid)
		}
		if kp.p.MaxIndexRequestsPerHour < 0 {
			return fmt.Errorf("%s.maxIndexRequestsPerHour: negative: %w", at, errdef.ErrInvalid)
		}
		seen := map[string]bool{}
		for i, d := range kp.p.Domains {
			if !validName(d.ID) {
				return fmt.Errorf("%s.domains[%d].id: %q is not a valid domain id: %w", at, i, d.ID, errdef.ErrInvalid)
			}
			if seen[d.ID] {
				return fmt.Errorf("%s.domains[%d].id: %q listed twice: %w", at, i, d.ID, errdef.ErrInvalid)
			}
			seen[d.ID] = true
			if d.MaxDownloadRequestsPerHour != nil && *d.MaxDownloadRequestsPerHour < 0 {
				return fmt.Errorf("%s.domains[%d].maxDownloadRequestsPerHour: negative: %w", at, i, errdef.ErrInvalid)
			}
		}
	}
	return nil
}
