// Package authority keeps an OAuth 2.0 / OIDC issuer's metadata (the
// StellaOps Authority's discovery document and JWKS) usable on a site that
// is offline most of the time, and checks the tokens it issues.
//
// # Options
//
// Options carries the Authority runbook's keys with their defaults:
// enabled, allowAnonymousFallback, issuer, audiences, requiredScopes,
// requiredTenants, bypassNetworks (v4 and v6 CIDRs), tokenClockSkewSeconds
// (60), and resilience {enableRetries (true), retryDelays (00:00:01,
// 00:00:02, 00:00:05; zero or negative entries ignored, empty means the
// default), allowOfflineCacheFallback (true), offlineCacheTolerance
// (00:10:00)}. Durations are written "hh:mm:ss" as in the runbook (also
// "d.hh:mm:ss", a fraction of seconds, or a Go duration such as "15m").
//
// # The cache
//
// ROOT/authority/<issuer-host>/ holds discovery.json and jwks.json as the
// issuer served them, and meta.json: issuer, jwks_uri, fetchedAt, the cache
// lifetime (the issuer's Cache-Control max-age, else Options.CacheLifetime,
// default 10 minutes), the ETags, and the sha256 of both documents. Each
// file is written atomically and meta.json last; a reader that finds
// documents not matching meta.json's digests (a refresh is writing) reads
// again, so it never pairs a new discovery document with an old JWKS.
// Documents are read bounded: MaxDocumentSize (1 MiB) each, MaxMetaSize
// (64 KiB) for meta.json.
//
// # Tolerance arithmetic
//
// With age = now − fetchedAt, a snapshot is
//
//	fresh              age ≤ lifetime
//	within tolerance   lifetime < age ≤ lifetime + offlineCacheTolerance (allowOfflineCacheFallback only)
//	expired            otherwise: protected routes answer 503, /readyz fails
//
// Example timeline: lifetime 5 minutes (max-age=300), tolerance 10 minutes,
// fetched at 12:00:00.
//
//	12:00:00  fetched                  fresh, 15m00s of validity left
//	12:05:00  lifetime ends            fresh, 10m00s left; a refresh is due
//	12:05:01  issuer unreachable       within tolerance, 9m59s left: tokens still accepted
//	12:15:00  last usable second       within tolerance, 0s left
//	12:15:01                           expired: 503 "metadata … past its lifetime and the offline tolerance"
//
// With allowOfflineCacheFallback off, 12:05:01 is already expired. A
// snapshot whose fetchedAt lies more than MaxFutureFetch (5 minutes) ahead
// of the clock is expired: it would otherwise stay fresh as long as it
// claims.
//
// # Refresh
//
// Refresher.Refresh fetches ISSUER/.well-known/openid-configuration; its
// issuer must equal Options.Issuer byte for byte, its jwks_uri must be an
// absolute https URL (http only on a loopback host with allowLoopbackHttp;
// redirects are held to the same rule). The JWKS must be a JSON object whose
// keys are public and asymmetric: a set publishing a private or symmetric
// key is refused whole; keys no accepted algorithm uses are skipped; at
// least one usable key (RSA ≥ 2048 bits, P-256, Ed25519) must remain.
// Bodies are read bounded (MaxDocumentSize + 1, then refused). Cached
// ETags are sent as If-None-Match; a 304 to both requests keeps the
// documents and moves fetchedAt. The lifetime is the smaller max-age of the
// two responses (capped at MaxCacheLifetime, 24 h; no-store or no-cache
// count as 0), else Options.CacheLifetime.
//
// A try that fails transiently (a network error, 5xx, 408, 429) is retried
// after each delay of the ladder in turn (1 s, 2 s, 5 s: four tries, 8 s of
// waiting; deterministic, no jitter; enableRetries false: one try). A
// document that breaks a rule fails at once and never replaces the cache.
// When every try fails, allowOfflineCacheFallback keeps the cache while it
// is within tolerance (Report.FellBack, nil error) and is an error wrapping
// ErrMetadataExpired (errdef.ErrExpired, exit 9) beyond.
//
// # Tokens
//
// Validator.Check decides on one request; each decision is an Outcome (ok,
// no_token, bad_token, scope, tenant, bound_token, expired_metadata,
// bypass, anonymous) with an HTTP status (200, 401, 403, 503) and a reason
// that never contains a token, a proof or key material:
//
//   - Without a token (Decide): a remote address in bypassNetworks passes
//     as bypass (bypass=True); else allowAnonymousFallback lets it pass as
//     anonymous; else 401. A request that carries a token is always
//     checked: bypass and the fallback never rescue a bad token.
//   - Metadata past lifetime + tolerance: 503, naming the issuer.
//   - The token: at most MaxTokenSize (16 KiB), refused before parsing; a
//     compact JWS (the JSON serialization is refused) signed with RS256,
//     PS256, ES256 or EdDSA (none and HMAC are refused at parse, so an HS256
//     token "signed" with the public key as secret never reaches a key);
//     its kid must name a cached key (else ErrUnknownKeyID, so the caller
//     can refresh, at most once a minute: RefreshLimiter) whose type and alg
//     fit the header's alg; typ dpop+jwt is refused. Then iss equal to the
//     issuer, aud containing one of audiences, exp present and now ≤ exp +
//     skew, now ≥ nbf − skew, iat ≤ now + skew.
//   - Sender constraint (RFC 9449, RFC 8705): a token with cnf is never a
//     plain bearer token. cnf.jkt requires the DPoP scheme and one DPoP
//     header: a compact JWS, typ dpop+jwt, an asymmetric alg fitting the
//     public jwk in its header, signed by that jwk, whose RFC 7638 SHA-256
//     thumbprint equals cnf.jkt; htm equal to the method; htu equal to the
//     request URL (scheme and host case-insensitive, default port dropped,
//     query and fragment ignored); iat within the skew of now; ath equal to
//     base64url(SHA-256(token)); jti (at most 256 bytes) not seen within
//     twice the skew for that key (ReplayCache: bounded, refuses new proofs
//     when full rather than forgetting unexpired ones). cnf.x5t#S256 requires
//     a TLS client certificate whose DER SHA-256 is that thumbprint. Other
//     confirmation methods are refused, as is the DPoP scheme or a DPoP
//     header with an unbound token.
//   - Scopes: every required scope (the route group's, else
//     requiredScopes) in scope (space-separated) or scp (array or string):
//     else 403. Tenant: with requiredTenants, the tenant claim
//     (stellaops:tenant) must be one of them: else 403.
//
// # Serve
//
// Guard is offkit serve's token checker for one issuer: it holds a
// Validator over the cached snapshot, swapped atomically after a refresh
// or when meta.json changes on disk (another process refreshed, an install
// imported a kit's snapshot); a token with an unknown kid refreshes at most
// once a minute (RefreshLimiter) without waiting for a refresh already
// running; Run refreshes in the background at the cache lifetime with the
// retry ladder; Ready fails naming the issuer while the snapshot is missing
// or expired. It implements the mirror's Tokens hook (Check, Remote) and is
// a prometheus.Collector. Middleware protects any handler with it and
// writes the audit line with the final status.
//
// # Kit snapshots
//
// NewSnapshot checks a saved discovery + JWKS pair as a refresh checks what
// it fetches; ImportSnapshot copies a kit's snapshot into the site's cache
// only when it is newer by fetch time.
//
// # Audit
//
// Each decision is one AuditRecord on the logger AuditLogger
// (offkit.authorization.audit), in the runbook's form followed by the
// outcome and reason:
//
//	route=/concelier/exports/index.json status=200 subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read bypass=False remote=10.1.4.7 outcome=ok reason="token accepted"
//
// with (anonymous) for a missing subject and (none) for a missing client id,
// scope list or address; values that could forge a field are quoted
// (logfmt). Attrs gives the same fields for JSON logs. The remote address
// is the peer's, or X-Forwarded-For's right-most untrusted hop when the peer
// is one of trustedProxies (ClientAddr).
package authority
