package authority_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/offkit/offkit/authority"
	"github.com/offkit/offkit/kit"
)

const alertsFile = "../examples/site-monitoring/authority-alerts.yaml"

// The example alert rules are a valid rule file, carry the runbook's
// queries (bypass with 401, missing scopes) and metadata near expiry, and
// every metric and label value they select is one offkit serve exports.
func TestAuthorityAlertRules(t *testing.T) {
	if err := kit.CheckRules(alertsFile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	for alert, want := range map[string]string{
		"OffkitAuthorityBypassUnauthorized": `offkit_authorization_audit_lines_total{status="401", bypass="True"}`,
		"OffkitAuthorityNoScopes":           `offkit_authorization_audit_lines_total{scopes="(none)", status="200"}`,
		"OffkitAuthorityMetadataNearExpiry": `offkit_authority_validity_remaining_seconds < 300`,
		"OffkitAuthorityMetadataExpired":    `offkit_authority_metadata_expired == 1`,
	} {
		if !strings.Contains(exprs[alert], want) {
			t.Errorf("%s: %q lacks %q", alert, exprs[alert], want)
		}
	}

	// What serve exports: a guard's metrics (over a cached snapshot) and
	// the audit lines.
	root := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA"}}})
	md, err := authority.NewSnapshot("https://authority.internal", []byte(`{"issuer":"https://authority.internal","jwks_uri":"https://authority.internal/jwks"}`),
		jwks, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authority.ImportSnapshot(root, md); err != nil {
		t.Fatal(err)
	}
	g, err := authority.NewGuard(authority.Options{Enabled: true, Issuer: "https://authority.internal", Audiences: []string{"a"}}, root, authority.GuardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	res := g.Check(httptest.NewRequest("GET", "/x", nil), nil)
	log := slog.New(slog.DiscardHandler)
	authority.NewAuditRecord("/x", 401, authority.Result{Bypass: true}, netip.Addr{}).Log(context.Background(), log)
	authority.NewAuditRecord("/x", 200, res, netip.Addr{}).Log(context.Background(), log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(g, authority.AuditLines)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				exported[l.GetName()+`="`+l.GetValue()+`"`] = true
			}
		}
	}
	metric := regexp.MustCompile(`offkit_[a-z_]+`)
	label := regexp.MustCompile(`(status|bypass|scopes|outcome)="[^"]*"`)
	for alert, expr := range exprs {
		for _, name := range metric.FindAllString(expr, -1) {
			if !exported[name] {
				t.Errorf("%s: metric %s is not exported", alert, name)
			}
		}
		for _, l := range label.FindAllString(expr, -1) {
			if !exported[l] {
				t.Errorf("%s: label value %s is never exported", alert, l)
			}
		}
	}
}
