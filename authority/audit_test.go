package authority

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestAuditLineRunbookForm(t *testing.T) {
	a := AuditRecord{Route: "/concelier/exports/index.json", Status: 200, Subject: "ops@example.com", ClientID: "concelier-cli",
		Scopes: []string{"concelier.mirror.read"}, Remote: netip.MustParseAddr("10.1.4.7"), Outcome: OK, Reason: "token accepted"}
	want := `route=/concelier/exports/index.json status=200 subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read bypass=False remote=10.1.4.7 outcome=ok reason="token accepted"`
	if got := a.String(); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	empty := AuditRecord{Route: "/x", Status: 401, Outcome: NoToken, Reason: "no token"}
	if got := empty.String(); !strings.HasPrefix(got, "route=/x status=401 subject=(anonymous) clientId=(none) scopes=(none) bypass=False remote=(none) ") {
		t.Fatalf("absent values: %s", got)
	}
	// A claim cannot forge fields: values with spaces, quotes or '=' are quoted.
	forged := AuditRecord{Route: "/x", Status: 200, Subject: "eve bypass=True", ClientID: "a\"b", Outcome: OK}
	if got := forged.String(); got != `route=/x status=200 subject="eve bypass=True" clientId="a\"b" scopes=(none) bypass=False remote=(none) outcome=ok reason=""` {
		t.Fatalf("forged: %s", got)
	}
}

func TestAuditJSON(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	AuditRecord{Route: "/r", Status: 401, Bypass: true, Remote: netip.MustParseAddr("::1"), Outcome: NoToken, Reason: "no token"}.Log(context.Background(), l)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"logger": AuditLogger, "route": "/r", "status": float64(401), "subject": "(anonymous)", "clientId": "(none)",
		"scopes": "(none)", "bypass": "True", "remote": "::1", "outcome": "no_token", "level": "WARN"} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, m[k], v, buf.String())
		}
	}
}

func TestClientAddr(t *testing.T) {
	trusted, _ := parsePrefixes([]string{"10.0.0.0/8", "fd00::/8"})
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1:5000", []string{"198.51.100.7"}, "192.0.2.1"},                          // untrusted peer: XFF ignored
		{"10.0.0.2:5000", []string{"198.51.100.7"}, "198.51.100.7"},                        // trusted proxy
		{"10.0.0.2:5000", []string{"203.0.113.9, 198.51.100.7, 10.0.0.3"}, "198.51.100.7"}, // right-most untrusted
		{"10.0.0.2:5000", []string{"203.0.113.9", "10.0.0.3"}, "203.0.113.9"},              // several headers
		{"10.0.0.2:5000", []string{"garbage, 10.0.0.3"}, "10.0.0.3"},                       // malformed: stop at the last good
		{"10.0.0.2:5000", nil, "10.0.0.2"},
		{"[fd00::1]:443", []string{"2001:db8::5"}, "2001:db8::5"},
		{"[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
	} {
		if got := ClientAddr(c.peer, c.xff, trusted); got.String() != c.want {
			t.Errorf("ClientAddr(%s, %q) = %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	o := Options{BypassNetworks: []string{"127.0.0.1/32", "::1/128"}}
	for _, c := range []struct {
		remote   string
		hasToken bool
		anon     bool
		want     Access
	}{
		{"127.0.0.1", false, false, BypassAccess},
		{"::1", false, false, BypassAccess},
		{"::ffff:127.0.0.1", false, false, BypassAccess},
		{"127.0.0.2", false, false, NeedToken},
		{"127.0.0.2", false, true, AnonymousAccess},
		{"127.0.0.1", true, true, NeedToken},
		{"10.0.0.1", true, false, NeedToken},
	} {
		o.AllowAnonymousFallback = c.anon
		if got := Decide(netip.MustParseAddr(c.remote), c.hasToken, o); got != c.want {
			t.Errorf("Decide(%s, token %v, anonymous %v) = %v, want %v", c.remote, c.hasToken, c.anon, got, c.want)
		}
	}
}

func TestRequestFrom(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TrustedProxies = []string{"10.0.0.0/8"} })
	r := httptest.NewRequest("GET", "https://mirror.site.internal/concelier/exports/index.json?x=1", nil)
	r.RemoteAddr = "10.0.0.5:1234"
	r.Header.Set("X-Forwarded-For", "192.0.2.44")
	r.Header.Set("Authorization", "Bearer abc")
	r.TLS = &tls.ConnectionState{}
	req := e.v.RequestFrom(r, []string{"s"})
	if req.Remote.String() != "192.0.2.44" || htuOf(req.URL) != reqURL || req.Method != "GET" || len(req.Authorization) != 1 || req.RequiredScopes[0] != "s" {
		t.Fatalf("%+v (htu %s)", req, htuOf(req.URL))
	}
}
