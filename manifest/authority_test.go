package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

func authoritySample() *Manifest {
	m := sample()
	for _, f := range authorityFiles {
		m.Entries = append(m.Entries, Entry{Path: "authority/authority.internal:8443/" + f, Size: 1, SHA256: strings.Repeat("c", 64), Role: RoleAuthority})
	}
	SortEntries(m.Entries)
	m.Authority = []Authority{{Issuer: "https://Authority.Internal:8443/realm", FetchedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}}
	return m
}

func TestAuthorityValidate(t *testing.T) {
	if err := authoritySample().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(m *Manifest){
		"a file missing": func(m *Manifest) {
			for i, e := range m.Entries {
				if strings.HasSuffix(e.Path, "/jwks.json") {
					m.Entries = append(m.Entries[:i], m.Entries[i+1:]...)
					break
				}
			}
		},
		"an entry no record lists": func(m *Manifest) { m.Authority[0].Issuer = "https://other.internal" },
		"issuer twice":             func(m *Manifest) { m.Authority = append(m.Authority, m.Authority[0]) },
		"no fetchedAt":             func(m *Manifest) { m.Authority[0].FetchedAt = time.Time{} },
		"no host":                  func(m *Manifest) { m.Authority[0].Issuer = "authority" },
		"unsafe host":              func(m *Manifest) { m.Authority[0].Issuer = "https://a%2f..%2fb/" },
		"a stray file": func(m *Manifest) {
			m.Entries = append(m.Entries, Entry{Path: "authority/authority.internal:8443/private.pem", Size: 1, SHA256: strings.Repeat("d", 64), Role: RoleAuthority})
			SortEntries(m.Entries)
		},
	} {
		m := authoritySample()
		mut(m)
		if err := m.Validate(); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "authority") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
