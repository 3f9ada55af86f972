package authority

import (
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// A DPoP refusal for the wrong URL quotes the request URL, which the client
// chose (Host header, path), clipped like the proof's htu: the reason goes
// into WWW-Authenticate and the audit line.
func TestDPoPHTUReasonBounded(t *testing.T) {
	genKeys(t)
	rs := issuerKeys(t)[0]
	client := testKey{"", jose.ES256, ecKey2}
	e := newEnv(t, nil)
	tok := e.token(rs, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(client.signer)} })
	long := "https://" + strings.Repeat("h", 30<<10) + ".example/" + strings.Repeat("p", 30<<10)
	u, err := url.Parse(long)
	if err != nil {
		t.Fatal(err)
	}
	r := e.request("DPoP " + tok)
	r.URL = u
	r.DPoP = []string{e.proof(client, "GET", reqURL, tok, nil)}
	res := e.v.Check(r)
	if res.Outcome != BoundToken || !strings.Contains(res.Reason, "is not the request URL") {
		t.Fatalf("%v %.300q", res.Outcome, res.Reason)
	}
	if len(res.Reason) > 1024 {
		t.Errorf("reason of %d bytes for a request URL of %d", len(res.Reason), len(long))
	}
}
