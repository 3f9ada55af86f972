package authority

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Refuse adds the caller's further challenges after Bearer's on a 401 only,
// answers a result without an error status as 401 (a Tokens hook that set
// none) with the status text as the reason, and never lets a cache keep a
// refusal.
func TestRefuseChallengesAndDefaults(t *testing.T) {
	basic := `Basic realm="x"`
	for _, c := range []struct {
		name   string
		res    Result
		status int
		chal   []string
		body   string
	}{
		{"no token", Result{Outcome: NoToken, Status: 401, Reason: "no token"}, 401, []string{`Bearer realm="offkit"`, basic}, "no token\n"},
		{"bad token", Result{Outcome: BadToken, Status: 401, Reason: `bad "x"` + "\n"}, 401,
			[]string{`Bearer realm="offkit", error="invalid_token", error_description="bad x"`, basic}, "bad \"x\"\n\n"},
		{"scope", Result{Outcome: Scope, Status: 403, Reason: "scope"}, 403,
			[]string{`Bearer realm="offkit", error="insufficient_scope", error_description="scope"`}, "scope\n"},
		{"expired metadata", Result{Outcome: ExpiredMetadata, Status: 503, Reason: "expired"}, 503, nil, "expired\n"},
		{"no status, no reason", Result{Outcome: BadToken}, 401,
			[]string{`Bearer realm="offkit", error="invalid_token", error_description="Unauthorized"`, basic}, "Unauthorized\n"},
		{"status 200", Result{Outcome: BadToken, Status: 200, Reason: "r"}, 401,
			[]string{`Bearer realm="offkit", error="invalid_token", error_description="r"`, basic}, "r\n"},
	} {
		w := httptest.NewRecorder()
		Refuse(w, c.res, basic)
		if w.Code != c.status || w.Body.String() != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.name, w.Code, w.Body, c.status, c.body)
		}
		if got := w.Header().Values("WWW-Authenticate"); strings.Join(got, "|") != strings.Join(c.chal, "|") {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, c.chal)
		}
		if (w.Header().Get("Retry-After") == "60") != (c.status == 503) {
			t.Errorf("%s: Retry-After %q", c.name, w.Header().Get("Retry-After"))
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %v", c.name, w.Header())
		}
	}
}
