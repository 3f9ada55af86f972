package manifest

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// AuthoritySource is one Authority metadata snapshot a kit carries
// (kit.yaml `authority:`): either a saved pair (Discovery and JWKS, files
// relative to the spec's folder, with the time they were fetched) or, with
// Snapshot, the issuer's metadata fetched when the kit is built.
type AuthoritySource struct {
	// Issuer is the issuer URL; the discovery document's issuer must equal it.
	Issuer    string     `json:"issuer"`
	Discovery string     `json:"discovery,omitempty"`
	JWKS      string     `json:"jwks,omitempty"`
	FetchedAt *time.Time `json:"fetchedAt,omitempty"`
	// Lifetime is the cache lifetime the issuer announced with the pair
	// (hh:mm:ss or a Go duration; default 00:10:00, at most 24 h).
	Lifetime string `json:"lifetime,omitempty"`
	// Snapshot fetches discovery and JWKS from the issuer at build time.
	Snapshot bool `json:"snapshot,omitempty"`
}

// Files of a snapshot in a kit, under AuthorityDir(issuer).
var authorityFiles = []string{"discovery.json", "jwks.json", "meta.json"}

// AuthorityDir is the kit folder of issuer's snapshot:
// authority/<issuer-host>, the host lowercased with its port (the name the
// site's cache folder has).
func AuthorityDir(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("issuer %q: no host", issuer)
	}
	host := strings.ToLower(u.Host)
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return "", fmt.Errorf("issuer %q: host %q is not a safe folder name", issuer, host)
		}
	}
	if strings.Trim(host, ".") == "" {
		return "", fmt.Errorf("issuer %q: host %q is not a folder name", issuer, host)
	}
	return path.Join("authority", host), nil
}

// validateAuthority: every authority[] record names an issuer once, with a
// fetch time, and the kit carries its discovery.json, jwks.json and
// meta.json under AuthorityDir; every entry under authority/ belongs to a
// record.
func (m *Manifest) validateAuthority() error {
	byPath := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		byPath[e.Path] = true
	}
	dirs := map[string]bool{}
	for i, a := range m.Authority {
		field := fmt.Sprintf("authority[%d]", i)
		dir, err := AuthorityDir(a.Issuer)
		if err != nil {
			return invalid(field+" issuer", "%v", err)
		}
		if dirs[dir] {
			return invalid(field+" issuer", "%s is listed twice (or shares its host with another issuer)", a.Issuer)
		}
		dirs[dir] = true
		if a.FetchedAt.IsZero() {
			return invalid(field+" fetchedAt", "missing")
		}
		for _, f := range authorityFiles {
			if !byPath[dir+"/"+f] {
				return invalid(field, "the kit does not carry %s/%s", dir, f)
			}
		}
	}
	for _, e := range m.Entries {
		if e.Role != RoleAuthority {
			continue
		}
		dir, name := path.Split(e.Path)
		if !dirs[strings.TrimSuffix(dir, "/")] || !containsString(authorityFiles, name) {
			return invalid(fmt.Sprintf("entries %q", e.Path), "is not a file of a snapshot authority[] lists")
		}
	}
	return nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
