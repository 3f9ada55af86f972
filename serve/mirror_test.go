package serve

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

func TestLoadConfigMirror(t *testing.T) {
	p := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(p, []byte(`mirror:
  concelier:
    activeExportId: 20251123T000000Z
    requireAuthentication: true
    maxIndexRequestsPerHour: 60
    domains:
      - {id: primary, displayName: Primary, maxDownloadRequestsPerHour: 0, requireAuthentication: false}
  excititor:
    enabled: false
`), 0o644)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Mirror
	if m.Concelier.ActiveExportID != "20251123T000000Z" || !m.Concelier.RequireAuthentication || m.Concelier.MaxIndexRequestsPerHour != 60 ||
		len(m.Concelier.Domains) != 1 || *m.Concelier.Domains[0].MaxDownloadRequestsPerHour != 0 || *m.Concelier.Domains[0].RequireAuthentication ||
		m.Excititor.Enabled == nil || *m.Excititor.Enabled {
		t.Fatalf("%+v", m)
	}
	if c, err := LoadConfig("../examples/site-monitoring/serve.yaml"); err != nil || c.Mirror.Concelier.MaxIndexRequestsPerHour != 600 {
		t.Fatalf("the example serve.yaml: %v", err)
	}
	for _, bad := range []string{
		"mirror:\n  concelier:\n    activeExportId: ../x\n",
		"mirror:\n  concelier:\n    maxIndexRequestsPerHour: -1\n",
		"mirror:\n  concelier:\n    domains:\n      - {id: a/b}\n",
		"mirror:\n  concelier:\n    domains:\n      - {id: a}\n      - {id: a}\n",
		"mirror:\n  concelier:\n    domains:\n      - {displayName: x}\n",
		"mirror:\n  other: {}\n",
		"mirror:\n  concelier:\n    bogus: 1\n",
	} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := LoadConfig(p); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("config %q: %v", bad, err)
		}
	}
}
