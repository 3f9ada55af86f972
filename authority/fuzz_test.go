package authority

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheck: no input in the Authorization or DPoP header panics, is
// accepted, or puts the token into the reason.
func FuzzCheck(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.", "")
	f.Add("DPoP eyJhbGciOiJSUzI1NiIsImtpZCI6InJzIn0.e30.c2ln", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln")
	f.Add("Bearer {\"payload\":\"e30\",\"signatures\":[]}", "")
	f.Add("Bearer a.b.c.d.e", "x")
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, auth, dpop string) {
		req := e.request(auth)
		req.Remote = netip.MustParseAddr("192.0.2.1")
		if dpop != "" {
			req.DPoP = []string{dpop}
		}
		res := e.v.Check(req)
		if res.Allowed() {
			t.Fatalf("accepted %q: %v", auth, res.Outcome)
		}
		if _, tok, _ := strings.Cut(auth, " "); len(tok) > 24 && strings.Contains(res.Reason, tok) {
			t.Fatalf("reason quotes the token: %q", res.Reason)
		}
	})
}
