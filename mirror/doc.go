// Package mirror reads Concelier and Excititor feed mirror exports, checks
// their layout and verifies their detached signatures, for offkit build
// (docs/mirror.md). It reads files only; it serves nothing.
//
// # Export layout
//
//	ROOT/<exportId>/mirror/index.json                {"schemaVersion":1,"domains":[{"id":"primary",...},...],...}
//	ROOT/<exportId>/mirror/<domain>/manifest.json    Concelier: {"domainId":"primary","created":"…",...}
//	ROOT/<exportId>/mirror/<domain>/bundle.json      Concelier: the bundle (JSON; may carry "generatedAt")
//	ROOT/<exportId>/mirror/<domain>/bundle.json.jws  Concelier: detached signature of bundle.json
//	ROOT/<exportId>/mirror/<domain>/index.json       Excititor: {"schemaVersion":1,"domainId":…,"generatedAt":…,
//	                                                   "exports":[{"exportKey","format","file","sha256","size"},...]}
//	ROOT/<exportId>/mirror/<domain>/<file>, <file>.jws  Excititor: an export and its detached signature
//	ROOT/latest -> <exportId>
//
// Rules, each failing with an error that names the file or field and wraps
// errdef.ErrInvalid unless said otherwise:
//   - the export is ROOT/latest's target (a sibling folder; without the
//     link, the newest), the greatest id (SelectNewest), or a named id
//     (errdef.ErrNotFound when missing);
//   - every name inside the export (domain ids, file names, export keys)
//     passes manifest.CheckMirrorName: ASCII letters, digits, '.', '_',
//     '-', no leading dot, at most 128 bytes; so no "..", "/", "\", "%",
//     space or control character;
//   - no symbolic link, device, FIFO or socket anywhere inside the export;
//   - mirror/index.json has schemaVersion 1 and lists exactly the domain
//     folders present (a listed domain without a folder, or a folder not
//     listed, is refused); mirror/ holds nothing else;
//   - a Concelier domain folder holds exactly manifest.json (its domainId
//     is the folder's name), bundle.json and bundle.json.jws;
//   - an Excititor domain folder holds exactly index.json (schemaVersion 1,
//     domainId the folder's name) and, for each export it lists (format
//     json, jsonl, openvex or csaf; unique file and unique exportKey+format),
//     the file and file.jws; the file's size and SHA-256 must be the
//     listed ones (errdef.ErrDigestMismatch);
//   - every signed file is JSON (JSON Lines for jsonl), checked as it
//     streams, nested at most MaxJSONDepth deep; index and manifest files
//     are at most MaxIndexFile bytes; "created" and "generatedAt" are
//     RFC 3339 times. Unknown JSON fields are data: carried, never refused.
//
// # Signatures
//
// A signature file (at most MaxSignatureFile bytes) holds one of:
//   - a compact JWS with a detached payload (RFC 7515 appendix F,
//     "header..signature"), with the payload base64url-encoded in the
//     signing input or, with "b64":false and "crit":["b64"] (RFC 7797), as
//     is; alg ES256, EdDSA, RS256 or PS256; "kid", when present, must name
//     a trusted key;
//   - a cosign blob signature: base64 of the raw signature, as cosign
//     sign-blob writes it; ECDSA P-256 (ASN.1) and RSA PKCS #1 v1.5 over
//     SHA-256 of the file, Ed25519 over the file;
//   - a DSSE envelope of payload type DSSEPayloadType, signed with Ed25519,
//     whose payload is a Statement with purpose "mirror-bundle" naming the
//     file's SHA-256 (see Statement); any other purpose is refused.
//
// The file is read once, in constant memory, whatever its size: its bytes
// go through SHA-256 (the digest the kit records), through the hash of the
// signing input (for JWS, ASCII(header) || '.' || payload, streamed; for
// EdDSA, SHA-512(R || A || M) streamed and the curve equation checked at
// the end, so even Ed25519 needs no copy of the file), and through the
// JSON check.
//
// An unsigned JWS (alg none), an HMAC alg, any other alg, a kid or DSSE
// keyid that names no trusted key, and a signature that does not verify
// wrap errdef.ErrSignature (exit 5). A header that is not base64url JSON, a
// payload that is not detached, b64:false without crit, an unknown crit
// name, or a signature file of none of the three kinds wrap
// errdef.ErrInvalid (exit 11).
//
// # Keys
//
// ParseKeys reads a JWK, a JWKS or PEM public keys (PKIX, or PKCS #1 for
// RSA): ECDSA P-256, Ed25519, or RSA of at least MinRSABits bits. A key's
// id is its JWK "kid", else a configured id, else its RFC 7638 thumbprint.
package mirror
