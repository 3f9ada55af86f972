package authority

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const route = "/concelier/exports/index.json"

// env is a validator over a fake issuer's cached metadata, at a fake time.
type env struct {
	t     testing.TB
	f     *fakeIssuer
	clock *fakeClock
	root  string
	opts  Options
	md    Metadata
	v     *Validator
}

func newEnv(t testing.TB, mut func(*Options)) *env {
	f := newFakeIssuer(t)
	clock := newClock()
	root := t.TempDir()
	r := f.refresher(t, root, clock)
	r.Options.RequiredTenants = []string{"tenant-a"}
	r.Options.BypassNetworks = []string{"10.9.0.0/16", "fd00:9::/32"}
	if mut != nil {
		mut(&r.Options)
	}
	rep, err := r.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	md, err := Load(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(r.Options, md, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, f: f, clock: clock, root: root, opts: r.Options, md: md, v: v}
}

func (e *env) claims() map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"iss": e.f.URL, "sub": "ops@example.com", "aud": "api://concelier", "client_id": "concelier-cli",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"scope": "concelier.mirror.read other", "stellaops:tenant": "tenant-a",
	}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, embed bool, payload any) string {
	t.Helper()
	o := &jose.SignerOptions{EmbedJWK: embed}
	o = o.WithType(jose.ContentType(typ))
	if kid != "" {
		o = o.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) token(k testKey, mut func(map[string]any)) string {
	c := e.claims()
	if mut != nil {
		mut(c)
	}
	return sign(e.t, k.alg, k.signer, k.kid, "at+jwt", false, c)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func thumb(k crypto.Signer) string {
	jwk := jose.JSONWebKey{Key: k.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return b64(tp)
}

// proof is a DPoP proof by k for method and URL u, bound to token.
func (e *env) proof(k testKey, method, u, token string, mut func(map[string]any)) string {
	ath := sha256.Sum256([]byte(token))
	c := map[string]any{"jti": "jti-" + e.clock.Now().Format(time.RFC3339Nano) + "-" + method + u, "htm": method, "htu": u,
		"iat": e.clock.Now().Unix(), "ath": b64(ath[:])}
	if mut != nil {
		mut(c)
	}
	return sign(e.t, k.alg, k.signer, "", "dpop+jwt", true, c)
}

const reqURL = "https://mirror.site.internal/concelier/exports/index.json"

func (e *env) request(auth string) Request {
	u, _ := url.Parse(reqURL)
	r := Request{Method: "GET", URL: u, Remote: netip.MustParseAddr("10.1.4.7")}
	if auth != "" {
		r.Authorization = []string{auth}
	}
	return r
}

func selfSigned(t *testing.T, k crypto.Signer) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawJWT(header, payload string) string {
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "."
}

// audit is the expected audit line's runbook part.
func audit(status int, subject, client, scopes, bypass, remote string) string {
	return "route=" + route + " status=" + itoa(status) + " subject=" + subject + " clientId=" + client +
		" scopes=" + scopes + " bypass=" + bypass + " remote=" + remote + " "
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

var (
	okLine   = audit(200, "ops@example.com", "concelier-cli", "concelier.mirror.read,other", "False", "10.1.4.7")
	anonLine = func(status int) string { return audit(status, "(anonymous)", "(none)", "(none)", "False", "10.1.4.7") }
)

func TestCheck(t *testing.T) {
	genKeys(t)
	keys := issuerKeys(t)
	rs, ps, es, ed := keys[0], keys[1], keys[2], keys[3]
	client := testKey{"", jose.ES256, ecKey2}
	other := testKey{"", jose.RS256, rsaKey2}
	clientCert := selfSigned(t, ecKey2)
	otherCert := selfSigned(t, rsaKey2)
	certThumb := func(c *x509.Certificate) string { s := sha256.Sum256(c.Raw); return b64(s[:]) }
	pubPEM, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubPEM})

	type tc struct {
		name    string
		opts    func(*Options)
		req     func(e *env) Request
		outcome Outcome
		status  int
		line    string // the audit line's runbook part
		reason  string // in the reason
		err     error
	}
	bearer := func(k testKey, mut func(map[string]any)) func(e *env) Request {
		return func(e *env) Request { return e.request("Bearer " + e.token(k, mut)) }
	}
	dpop := func(tokenKey testKey, proofKey testKey, method, u string, pmut func(map[string]any)) func(e *env) Request {
		return func(e *env) Request {
			tok := e.token(tokenKey, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(client.signer)} })
			r := e.request("DPoP " + tok)
			r.DPoP = []string{e.proof(proofKey, method, u, tok, pmut)}
			return r
		}
	}
	mtls := func(cert *x509.Certificate) func(e *env) Request {
		return func(e *env) Request {
			r := e.request("Bearer " + e.token(rs, func(c map[string]any) {
				c["cnf"] = map[string]any{"x5t#S256": certThumb(clientCert)}
			}))
			if cert != nil {
				r.PeerCertificates = []*x509.Certificate{cert}
			}
			return r
		}
	}
	cases := []tc{
		{name: "RS256", req: bearer(rs, nil), outcome: OK, status: 200, line: okLine, reason: "token accepted"},
		{name: "PS256", req: bearer(ps, nil), outcome: OK, status: 200, line: okLine},
		{name: "ES256", req: bearer(es, nil), outcome: OK, status: 200, line: okLine},
		{name: "EdDSA", req: bearer(ed, nil), outcome: OK, status: 200, line: okLine},
		{name: "scp array", req: bearer(rs, func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{"concelier.mirror.read"} }),
			outcome: OK, status: 200, line: audit(200, "ops@example.com", "concelier-cli", "concelier.mirror.read", "False", "10.1.4.7")},
		{name: "expired within skew", req: bearer(rs, func(c map[string]any) { c["exp"] = e0().Add(-30 * time.Second).Unix() }), outcome: OK, status: 200, line: okLine},
		{name: "expired", req: bearer(rs, func(c map[string]any) { c["exp"] = e0().Add(-61 * time.Second).Unix() }),
			outcome: BadToken, status: 401, line: anonLine(401), reason: "token expired at 2026-11-30T11:58:59Z"},
		{name: "no exp", req: bearer(rs, func(c map[string]any) { delete(c, "exp") }), outcome: BadToken, status: 401, line: anonLine(401), reason: "no exp"},
		{name: "not yet valid", req: bearer(rs, func(c map[string]any) { c["nbf"] = e0().Add(2 * time.Minute).Unix() }),
			outcome: BadToken, status: 401, line: anonLine(401), reason: "not valid before"},
		{name: "issued in the future", req: bearer(rs, func(c map[string]any) { c["iat"] = e0().Add(2 * time.Minute).Unix() }),
			outcome: BadToken, status: 401, line: anonLine(401), reason: "issued in the future"},
		{name: "wrong audience", req: bearer(rs, func(c map[string]any) { c["aud"] = []string{"api://excititor"} }),
			outcome: BadToken, status: 401, line: anonLine(401), reason: `audience ["api://excititor"] is none of ["api://concelier"]`},
		{name: "wrong issuer", req: bearer(rs, func(c map[string]any) { c["iss"] = "https://evil.example" }),
			outcome: BadToken, status: 401, line: anonLine(401), reason: `issuer "https://evil.example" is not`},
		{name: "missing scope", req: bearer(rs, func(c map[string]any) { c["scope"] = "other" }), outcome: Scope, status: 403,
			line: audit(403, "ops@example.com", "concelier-cli", "other", "False", "10.1.4.7"), reason: `lacks the required scope "concelier.mirror.read"`},
		{name: "no scopes", req: bearer(rs, func(c map[string]any) { delete(c, "scope") }), outcome: Scope, status: 403,
			line: audit(403, "ops@example.com", "concelier-cli", "(none)", "False", "10.1.4.7")},
		{name: "no client_id", req: bearer(rs, func(c map[string]any) { delete(c, "client_id") }), outcome: OK, status: 200,
			line: audit(200, "ops@example.com", "(none)", "concelier.mirror.read,other", "False", "10.1.4.7")},
		{name: "wrong tenant", req: bearer(rs, func(c map[string]any) { c["stellaops:tenant"] = "tenant-b" }), outcome: Tenant, status: 403,
			line: okLine[:len("route=/concelier/exports/index.json status=")] + "403" + okLine[len("route=/concelier/exports/index.json status=200"):], reason: `tenant "tenant-b" is not a required tenant`},
		{name: "no tenant", req: bearer(rs, func(c map[string]any) { delete(c, "stellaops:tenant") }), outcome: Tenant, status: 403, reason: "no stellaops:tenant claim"},
		{name: "alg none", req: func(e *env) Request {
			p, _ := json.Marshal(e.claims())
			return e.request("Bearer " + rawJWT(`{"alg":"none","typ":"JWT","kid":"rs"}`, string(p)))
		}, outcome: BadToken, status: 401, line: anonLine(401), reason: `signature algorithm "none" is not accepted`},
		{name: "HS256 with the public key as secret", req: func(e *env) Request {
			return e.request("Bearer " + sign(t, jose.HS256, pemBytes, "rs", "JWT", false, e.claims()))
		}, outcome: BadToken, status: 401, line: anonLine(401), reason: `signature algorithm "HS256" is not accepted`},
		{name: "unknown kid", req: bearer(testKey{"rotated", jose.RS256, rsaKey2}, nil), outcome: BadToken, status: 401,
			line: anonLine(401), reason: `key id "rotated" is not in the cached JWKS`, err: ErrUnknownKeyID},
		{name: "alg does not match key", req: bearer(testKey{"rs", jose.ES256, ecKey}, nil), outcome: BadToken, status: 401, reason: "does not match key"},
		{name: "signed by another key", req: bearer(testKey{"rs", jose.RS256, rsaKey2}, nil), outcome: BadToken, status: 401, reason: "signature does not verify"},
		{name: "malformed base64", req: func(e *env) Request { return e.request("Bearer eyJhbGciOiJSUzI1NiJ9.!!!not-base64!!!.c2ln") },
			outcome: BadToken, status: 401, line: anonLine(401), reason: "not a compact JWS"},
		{name: "JWS JSON serialization", req: func(e *env) Request { return e.request(`Bearer {"payload":"e30","signatures":[]}`) },
			outcome: BadToken, status: 401, reason: "not a compact JWS"},
		{name: "1 MB token", req: func(e *env) Request { return e.request("Bearer " + strings.Repeat("a", 1<<20)) },
			outcome: BadToken, status: 401, line: anonLine(401), reason: "token of 1048576 bytes, over 16384"},
		{name: "DPoP proof as token", req: func(e *env) Request {
			return e.request("Bearer " + sign(t, rs.alg, rs.signer, "rs", "dpop+jwt", false, e.claims()))
		}, outcome: BadToken, status: 401, reason: "DPoP proof is not an access token"},
		{name: "two Authorization headers", req: func(e *env) Request {
			r := e.request("Bearer " + e.token(rs, nil))
			r.Authorization = append(r.Authorization, r.Authorization[0])
			return r
		}, outcome: BadToken, status: 401, reason: "more than one Authorization header"},
		{name: "Basic", req: func(e *env) Request { return e.request("Basic dXNlcjpwYXNz") }, outcome: BadToken, status: 401, reason: "neither Bearer nor DPoP"},
		{name: "no token", req: func(e *env) Request { return e.request("") }, outcome: NoToken, status: 401, line: anonLine(401), reason: "no token"},

		// bypass networks and anonymous fallback
		{name: "bypass v4", req: func(e *env) Request { r := e.request(""); r.Remote = netip.MustParseAddr("10.9.1.2"); return r },
			outcome: Bypass, status: 200, line: audit(200, "(anonymous)", "(none)", "(none)", "True", "10.9.1.2"), reason: "bypassNetworks"},
		{name: "bypass v6", req: func(e *env) Request { r := e.request(""); r.Remote = netip.MustParseAddr("fd00:9::7"); return r },
			outcome: Bypass, status: 200, line: audit(200, "(anonymous)", "(none)", "(none)", "True", "fd00:9::7")},
		{name: "bypass v4-mapped v6", req: func(e *env) Request { r := e.request(""); r.Remote = netip.MustParseAddr("::ffff:10.9.1.2"); return r },
			outcome: Bypass, status: 200, line: audit(200, "(anonymous)", "(none)", "(none)", "True", "10.9.1.2")},
		{name: "outside bypass v6", req: func(e *env) Request { r := e.request(""); r.Remote = netip.MustParseAddr("fd00:a::7"); return r },
			outcome: NoToken, status: 401, line: audit(401, "(anonymous)", "(none)", "(none)", "False", "fd00:a::7")},
		{name: "bypass network with a bad token", req: func(e *env) Request {
			r := e.request("Bearer x.y.z")
			r.Remote = netip.MustParseAddr("10.9.1.2")
			return r
		}, outcome: BadToken, status: 401, line: audit(401, "(anonymous)", "(none)", "(none)", "False", "10.9.1.2")},
		{name: "anonymous fallback on", opts: func(o *Options) { o.AllowAnonymousFallback = true }, req: func(e *env) Request { return e.request("") },
			outcome: Anonymous, status: 200, line: anonLine(200), reason: "allowAnonymousFallback"},
		{name: "anonymous fallback on, bad token", opts: func(o *Options) { o.AllowAnonymousFallback = true },
			req: bearer(rs, func(c map[string]any) { c["aud"] = "x" }), outcome: BadToken, status: 401, line: anonLine(401)},
		{name: "anonymous fallback off", req: func(e *env) Request { return e.request("") }, outcome: NoToken, status: 401, line: anonLine(401)},

		// DPoP
		{name: "DPoP", req: dpop(rs, client, "GET", reqURL, nil), outcome: OK, status: 200, line: okLine},
		{name: "DPoP htu with query and default port", req: dpop(rs, client, "GET", "https://MIRROR.site.internal:443/concelier/exports/index.json?x=1#f", nil), outcome: OK, status: 200},
		{name: "DPoP missing", req: func(e *env) Request {
			r := dpop(rs, client, "GET", reqURL, nil)(e)
			r.DPoP = nil
			return r
		}, outcome: BoundToken, status: 401, line: anonLine(401), reason: "DPoP-bound token without a DPoP proof"},
		{name: "DPoP wrong method", req: dpop(rs, client, "POST", reqURL, nil), outcome: BoundToken, status: 401, line: anonLine(401),
			reason: `htm "POST" is not the request method "GET"`},
		{name: "DPoP wrong URL", req: dpop(rs, client, "GET", "https://mirror.site.internal/concelier/exports/other.json", nil), outcome: BoundToken, status: 401,
			line: anonLine(401), reason: "is not the request URL"},
		{name: "DPoP for another key", req: dpop(rs, other, "GET", reqURL, nil), outcome: BoundToken, status: 401, line: anonLine(401),
			reason: "not the key the token is bound to (cnf.jkt)"},
		{name: "DPoP for another token", req: dpop(rs, client, "GET", reqURL, func(c map[string]any) { c["ath"] = b64(make([]byte, 32)) }),
			outcome: BoundToken, status: 401, reason: "ath is not the hash"},
		{name: "DPoP old iat", req: dpop(rs, client, "GET", reqURL, func(c map[string]any) { c["iat"] = e0().Add(-2 * time.Minute).Unix() }),
			outcome: BoundToken, status: 401, reason: "iat"},
		{name: "DPoP no jti", req: dpop(rs, client, "GET", reqURL, func(c map[string]any) { delete(c, "jti") }), outcome: BoundToken, status: 401, reason: "jti"},
		{name: "DPoP typ JWT", req: func(e *env) Request {
			tok := e.token(rs, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(client.signer)} })
			r := e.request("DPoP " + tok)
			ath := sha256.Sum256([]byte(tok))
			r.DPoP = []string{sign(t, client.alg, client.signer, "", "JWT", true, map[string]any{"jti": "j", "htm": "GET", "htu": reqURL, "iat": e0().Unix(), "ath": b64(ath[:])})}
			return r
		}, outcome: BoundToken, status: 401, reason: "typ is not dpop+jwt"},
		{name: "DPoP HS256 proof", req: func(e *env) Request {
			tok := e.token(rs, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(client.signer)} })
			r := e.request("DPoP " + tok)
			r.DPoP = []string{sign(t, jose.HS256, pemBytes, "", "dpop+jwt", false, map[string]any{"jti": "j", "htm": "GET", "htu": reqURL, "iat": e0().Unix()})}
			return r
		}, outcome: BoundToken, status: 401, reason: "asymmetric algorithm"},
		{name: "DPoP-bound as Bearer", req: func(e *env) Request {
			r := dpop(rs, client, "GET", reqURL, nil)(e)
			r.Authorization[0] = "Bearer" + strings.TrimPrefix(r.Authorization[0], "DPoP")
			return r
		}, outcome: BoundToken, status: 401, reason: "sent with the Bearer scheme"},
		{name: "DPoP scheme, unbound token", req: func(e *env) Request { return e.request("DPoP " + e.token(rs, nil)) },
			outcome: BoundToken, status: 401, reason: "not DPoP-bound"},
		{name: "unknown confirmation method", req: bearer(rs, func(c map[string]any) { c["cnf"] = map[string]any{"jwk": map[string]any{"kty": "EC"}} }),
			outcome: BoundToken, status: 401, reason: "cnf.jwk is not supported"},

		// mTLS
		{name: "mTLS", req: mtls(clientCert), outcome: OK, status: 200, line: okLine},
		{name: "mTLS-bound without a client certificate", req: mtls(nil), outcome: BoundToken, status: 401, line: anonLine(401),
			reason: "bound to a TLS client certificate (cnf.x5t#S256) and the request has none"},
		{name: "mTLS-bound with another certificate", req: mtls(otherCert), outcome: BoundToken, status: 401, reason: "not the one the token is bound to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts)
			req := c.req(e)
			res := e.v.Check(req)
			line := NewAuditRecord(route, res.Status, res, req.Remote).String()
			t.Logf("%s", line)
			if res.Outcome != c.outcome || res.Status != c.status || res.Allowed() != (c.status == 200) {
				t.Fatalf("outcome %v %d (%s), want %v %d", res.Outcome, res.Status, res.Reason, c.outcome, c.status)
			}
			if c.line != "" && !strings.HasPrefix(line, c.line+"outcome="+c.outcome.String()+" reason=") {
				t.Fatalf("audit line\n%s\nwant prefix\n%s", line, c.line+"outcome="+c.outcome.String())
			}
			if !strings.Contains(res.Reason, c.reason) || res.Reason == "" {
				t.Fatalf("reason %q, want %q", res.Reason, c.reason)
			}
			if c.err != nil && !errors.Is(res.Err, c.err) {
				t.Fatalf("err %v, want %v", res.Err, c.err)
			}
			noKeyMaterial(t, res.Reason, req)
			noKeyMaterial(t, line, req)
		})
	}
}

// e0 is the fake clock's start.
func e0() time.Time { return newClock().Now() }

// noKeyMaterial: a reason never quotes a token, a proof, a signature or a key.
func noKeyMaterial(t *testing.T, s string, req Request) {
	t.Helper()
	var secrets []string
	for _, h := range append(append([]string{}, req.Authorization...), req.DPoP...) {
		for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == '.' || r == ' ' }) {
			if len(part) > 24 {
				secrets = append(secrets, part)
			}
		}
	}
	for _, k := range []crypto.Signer{rsaKey, rsaKey2, ecKey, ecKey2, edKey} {
		j, _ := json.Marshal(jose.JSONWebKey{Key: k.Public()})
		var m map[string]string
		json.Unmarshal(j, &m)
		for _, f := range []string{"n", "x", "y"} {
			if m[f] != "" {
				secrets = append(secrets, m[f][:16])
			}
		}
	}
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Fatalf("%q contains material %q", s, sec)
		}
	}
}

func TestCheckDPoPReplay(t *testing.T) {
	e := newEnv(t, nil)
	client := testKey{"", jose.ES256, ecKey2}
	keys := issuerKeys(t)
	tok := e.token(keys[0], func(c map[string]any) { c["cnf"] = map[string]any{"jkt": thumb(client.signer)} })
	req := e.request("DPoP " + tok)
	req.DPoP = []string{e.proof(client, "GET", reqURL, tok, nil)}
	if res := e.v.Check(req); res.Outcome != OK {
		t.Fatalf("first use: %v %s", res.Outcome, res.Reason)
	}
	e.clock.Advance(30 * time.Second)
	res := e.v.Check(req)
	line := NewAuditRecord(route, res.Status, res, req.Remote).String()
	if res.Outcome != BoundToken || !errors.Is(res.Err, ErrReplayed) || !strings.Contains(res.Reason, "replayed") ||
		!strings.HasPrefix(line, anonLine(401)+"outcome=bound_token reason=") {
		t.Fatalf("replay: %v %v %q\n%s", res.Outcome, res.Err, res.Reason, line)
	}
	// A fresh proof (new jti) for the same token is accepted.
	req.DPoP = []string{e.proof(client, "GET", reqURL, tok, nil)}
	if res := e.v.Check(req); res.Outcome != OK {
		t.Fatalf("fresh proof: %v %s", res.Outcome, res.Reason)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(2*time.Minute, 3)
	now := e0()
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Add(k, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add("a", now.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if err := c.Add("d", now.Add(time.Minute)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: %v", err)
	}
	// Past the window the entries expire: the cache makes room, and "a" is new again.
	if err := c.Add("a", now.Add(2*time.Minute)); err != nil || c.Len() != 1 {
		t.Fatalf("after the window: %v, len %d", err, c.Len())
	}
}

func TestRefreshLimiter(t *testing.T) {
	c := newClock()
	l := &RefreshLimiter{Now: c.Now}
	if !l.Allow() {
		t.Fatal("first refresh refused")
	}
	for range 100 {
		if l.Allow() {
			t.Fatal("second refresh within a minute allowed")
		}
	}
	c.Advance(59 * time.Second)
	if l.Allow() {
		t.Fatal("allowed at 59 s")
	}
	c.Advance(time.Second)
	if !l.Allow() {
		t.Fatal("refused at 60 s")
	}
}

// Rotation: a token signed by a new key is an unknown kid until a refresh
// (allowed once a minute) brings the new JWKS; then it is accepted.
func TestCheckRotationViaUnknownKid(t *testing.T) {
	e := newEnv(t, nil)
	genKeys(t)
	newKey := testKey{"rotated", jose.RS256, rsaKey2}
	e.f.rotate(append(issuerKeys(t), newKey)...)
	tok := e.token(newKey, nil)
	res := e.v.Check(e.request("Bearer " + tok))
	if !errors.Is(res.Err, ErrUnknownKeyID) {
		t.Fatalf("before refresh: %v %s", res.Outcome, res.Reason)
	}
	lim := &RefreshLimiter{Now: e.clock.Now}
	if !lim.Allow() {
		t.Fatal("limiter")
	}
	r := e.f.refresher(t, e.root, e.clock)
	r.Options = e.opts
	rep, err := r.Refresh(context.Background())
	if err != nil || !rep.Fetched {
		t.Fatalf("refresh: %+v %v", rep, err)
	}
	md, err := Load(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(e.opts, md, e.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Check(e.request("Bearer " + tok)); res.Outcome != OK {
		t.Fatalf("after refresh: %v %s", res.Outcome, res.Reason)
	}
	if lim.Allow() {
		t.Fatal("a second unknown kid within the minute would refresh again")
	}
}

// Beyond tolerance, tokens are refused with 503 naming the issuer; the
// issuer coming back (a refresh) recovers without a new process.
func TestCheckExpiredMetadata(t *testing.T) {
	e := newEnv(t, nil)
	tok := func() string { return e.token(issuerKeys(t)[0], nil) }
	e.clock.Advance(15 * time.Minute) // lifetime 5 min + tolerance 10 min: last usable second
	if res := e.v.Check(e.request("Bearer " + tok())); res.Outcome != OK {
		t.Fatalf("at the tolerance's end: %v %s", res.Outcome, res.Reason)
	}
	e.clock.Advance(time.Second)
	res := e.v.Check(e.request("Bearer " + tok()))
	line := NewAuditRecord(route, res.Status, res, netip.MustParseAddr("10.1.4.7")).String()
	if res.Outcome != ExpiredMetadata || res.Status != 503 || !errors.Is(res.Err, ErrMetadataExpired) ||
		!strings.Contains(res.Reason, e.f.URL) || !strings.HasPrefix(line, anonLine(503)+"outcome=expired_metadata") {
		t.Fatalf("beyond tolerance: %v %d %q\n%s", res.Outcome, res.Status, res.Reason, line)
	}
	// Bypass needs no metadata.
	r := e.request("")
	r.Remote = netip.MustParseAddr("10.9.0.1")
	if res := e.v.Check(r); res.Outcome != Bypass {
		t.Fatalf("bypass with expired metadata: %v", res.Outcome)
	}
	if st := e.v.Status(); st.State != Expired {
		t.Fatalf("status %v", st.State)
	}
}
