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
package authority
