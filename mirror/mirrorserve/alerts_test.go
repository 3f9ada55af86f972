package mirrorserve

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The example alert rules alert on the metric this package exports, at the
// hardening guide's 48 hours.
func TestFeedAgeAlert(t *testing.T) {
	b, err := os.ReadFile("../../examples/site-monitoring/mirror-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "OffkitMirrorFeedStale" {
				if !strings.Contains(r.Expr, "offkit_mirror_export_age_seconds >= 48 * 3600") {
					t.Errorf("feed-age alert: %q", r.Expr)
				}
				return
			}
		}
	}
	t.Error("no feed-age alert")
}
