package mirror

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strconv"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/copybuf"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// Signature formats.
const (
	// MaxSignatureFile bounds a signature file (JWS, cosign or DSSE).
	MaxSignatureFile = 64 << 10
	// DSSEPayloadType is the payload type of a mirror bundle's DSSE envelope.
	DSSEPayloadType = "application/vnd.stellaops.mirror+json;version=1"
	// DSSEPurpose is the only purpose a mirror DSSE statement may state.
	DSSEPurpose = "mirror-bundle"
)

// The JWS algorithms a mirror signature may use.
var jwsAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// Signature is a parsed detached signature file: its kind
// (manifest.MirrorSigJWS, MirrorSigCosign or MirrorSigDSSE), and what it
// says about its signer. Nothing in it is trusted until Verify has checked
// it against the file it signs and a KeySet.
type Signature struct {
	Kind  string
	Alg   string // JWS "alg"; "EdDSA" for DSSE; "" for cosign (the key decides)
	KeyID string // JWS "kid" or DSSE "keyid"; "" when the signature names no key

	name string // the signature file, for messages

	// JWS
	protected string // the protected header as written (base64url)
	b64       bool   // RFC 7797: the payload is base64url-encoded in the signing input
	raw       []byte // the signature bytes (JWS, cosign)

	// DSSE: verified when parsed, the statement checked against the file.
	dsse *dsseEnvelope
}

// ParseSignature reads a signature file's bytes (at most
// MaxSignatureFile). A file starting with "{" is a DSSE envelope, one with
// dots a compact JWS with a detached payload, anything else a base64 cosign
// blob signature. Malformed input wraps errdef.ErrInvalid; an algorithm
// that is not a trusted public-key signature (none, HMAC, unknown) wraps
// errdef.ErrSignature. name is the file's name for messages.
func ParseSignature(name string, b []byte) (*Signature, error) {
	if len(b) > MaxSignatureFile {
		return nil, fmt.Errorf("%s: signature file of %d bytes, over %d: %w", name, len(b), MaxSignatureFile, errdef.ErrInvalid)
	}
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("%s: empty signature file: %w", name, errdef.ErrInvalid)
	case t[0] == '{':
		return parseDSSE(name, t)
	case bytes.IndexByte(t, '.') >= 0:
		return parseJWS(name, string(t))
	}
	raw, err := base64.StdEncoding.DecodeString(string(t))
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%s: not a detached JWS, a DSSE envelope or a base64 cosign signature: %w", name, errdef.ErrInvalid)
	}
	return &Signature{Kind: manifest.MirrorSigCosign, name: name, raw: raw}, nil
}

// parseJWS checks a compact JWS with a detached payload
// (header..signature): the header is JSON, its alg is one of jwsAlgs,
// "b64" (RFC 7797) is a boolean and, when false, is listed in "crit", and
// "crit" names nothing else. go-jose then parses it with the same rules.
func parseJWS(name, s string) (*Signature, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s: a compact JWS has three parts, this has %d: %w", name, len(parts), errdef.ErrInvalid)
	}
	if parts[1] != "" {
		return nil, fmt.Errorf("%s: JWS payload is not detached (RFC 7515 appendix F: header..signature): %w", name, errdef.ErrInvalid)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%s: JWS header is not base64url: %w", name, errdef.ErrInvalid)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr == nil {
		return nil, fmt.Errorf("%s: JWS header is not a JSON object: %w", name, errdef.ErrInvalid)
	}
	var alg string
	if err := json.Unmarshal(hdr["alg"], &alg); err != nil {
		return nil, fmt.Errorf("%s: JWS header alg: missing or not a string: %w", name, errdef.ErrInvalid)
	}
	switch {
	case strings.EqualFold(alg, "none"):
		return nil, fmt.Errorf("%s: JWS header alg %q: an unsigned JWS is never accepted: %w", name, clip(alg), errdef.ErrSignature)
	case strings.HasPrefix(alg, "HS"):
		return nil, fmt.Errorf("%s: JWS header alg %q: HMAC needs a shared secret; mirror signatures are checked with public keys (ES256, EdDSA, RS256, PS256): %w", name, clip(alg), errdef.ErrSignature)
	}
	accepted := false
	for _, a := range jwsAlgs {
		accepted = accepted || string(a) == alg
	}
	if !accepted {
		return nil, fmt.Errorf("%s: JWS header alg %q: not one of ES256, EdDSA, RS256, PS256: %w", name, clip(alg), errdef.ErrSignature)
	}
	b64 := true
	if v, ok := hdr["b64"]; ok {
		if err := json.Unmarshal(v, &b64); err != nil {
			return nil, fmt.Errorf("%s: JWS header b64: not a boolean: %w", name, errdef.ErrInvalid)
		}
	}
	var crit []string
	if v, ok := hdr["crit"]; ok {
		if err := json.Unmarshal(v, &crit); err != nil || len(crit) == 0 {
			return nil, fmt.Errorf("%s: JWS header crit: not a non-empty list of names: %w", name, errdef.ErrInvalid)
		}
		for _, c := range crit {
			if c != "b64" {
				return nil, fmt.Errorf("%s: JWS header crit: %q is not understood (only b64): %w", name, clip(c), errdef.ErrInvalid)
			}
			if _, ok := hdr[c]; !ok {
				return nil, fmt.Errorf("%s: JWS header crit names %q, which the header lacks: %w", name, c, errdef.ErrInvalid)
			}
		}
	}
	if !b64 && len(crit) == 0 {
		return nil, fmt.Errorf("%s: JWS header has b64:false without crit:[\"b64\"] (RFC 7797 section 6): %w", name, errdef.ErrInvalid)
	}
	obj, err := jose.ParseSignedCompact(s, jwsAlgs)
	if err != nil {
		return nil, fmt.Errorf("%s: JWS: %v: %w", name, err, errdef.ErrInvalid)
	}
	if len(obj.Signatures) != 1 {
		return nil, fmt.Errorf("%s: JWS: %d signatures, want 1: %w", name, len(obj.Signatures), errdef.ErrInvalid)
	}
	h := obj.Signatures[0].Protected
	if h.Algorithm != alg {
		return nil, fmt.Errorf("%s: JWS header alg %q read as %q: %w", name, clip(alg), clip(h.Algorithm), errdef.ErrInvalid)
	}
	raw := obj.Signatures[0].Signature
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: JWS has an empty signature: %w", name, errdef.ErrSignature)
	}
	return &Signature{Kind: manifest.MirrorSigJWS, Alg: alg, KeyID: h.KeyID, name: name, protected: parts[0], b64: b64, raw: raw}, nil
}

// Verified is what a verified signature vouched for.
type Verified struct {
	Kind   string // manifest.MirrorSigJWS, MirrorSigCosign or MirrorSigDSSE
	Alg    string // ES256, EdDSA, RS256 or PS256
	KeyID  string // the id of the trusted key that verified it
	SHA256 string // hex of the file's bytes
	Size   int64
}

// Verify reads r to its end once, checks the signature over its bytes with
// keys, and returns the file's digest and size with the key that verified
// it. subject is the file's base name (a DSSE statement names it). Memory
// does not grow with the size of r.
func (s *Signature) Verify(r io.Reader, keys *KeySet, subject string) (Verified, error) {
	v, err := s.NewVerifier(keys, subject)
	if err != nil {
		return Verified{}, err
	}
	if _, err := copybuf.Copy(v, r); err != nil {
		return Verified{}, fmt.Errorf("reading the file %s signs: %w", s.name, err)
	}
	return v.Finish()
}

// A Verifier checks a signature over the bytes written to it: write the
// whole file, then call Finish. It keeps only hash states.
type Verifier struct {
	sig     *Signature
	subject string
	file    hash.Hash // SHA-256 of the file
	size    int64
	w       io.Writer // where each write goes (file hash, signing input)
	enc     io.WriteCloser
	input   hash.Hash // SHA-256 of the JWS signing input (ES256, RS256, PS256)
	keys    []Key
	eds     []*ed25519Stream // one per candidate Ed25519 key
	dsseKey Key
}

// NewVerifier picks the trusted keys the signature may be by (the one its
// key id names, or every key of its algorithm) and readies the hashes.
// An untrusted key id, or no key of the signature's algorithm, wraps
// errdef.ErrSignature.
func (s *Signature) NewVerifier(keys *KeySet, subject string) (*Verifier, error) {
	v := &Verifier{sig: s, subject: subject, file: sha256.New()}
	sinks := []io.Writer{v.file}
	switch s.Kind {
	case manifest.MirrorSigDSSE:
		k, err := s.dsse.verify(s.name, keys)
		if err != nil {
			return nil, err
		}
		v.dsseKey = k
	case manifest.MirrorSigCosign:
		// Over SHA-256 of the blob for ECDSA and RSA; over the blob itself
		// for Ed25519.
		if keys.Len() == 0 {
			return nil, fmt.Errorf("%s: no trusted key to check a cosign signature with: %w", s.name, errdef.ErrSignature)
		}
		v.keys = keys.Keys()
		for _, k := range v.keys {
			if pub, ok := k.Public.(ed25519.PublicKey); ok {
				e := newEd25519Stream(pub, s.raw)
				v.eds = append(v.eds, e)
				sinks = append(sinks, e)
			}
		}
	case manifest.MirrorSigJWS:
		family := s.Alg
		if family == "RS256" || family == "PS256" {
			family = "RSA"
		}
		ks, err := keys.candidates(family, s.KeyID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		v.keys = ks
		prefix := []byte(s.protected + ".")
		var in []io.Writer
		if s.Alg == "EdDSA" {
			for _, k := range ks {
				e := newEd25519Stream(k.Public.(ed25519.PublicKey), s.raw)
				e.Write(prefix)
				v.eds = append(v.eds, e)
				in = append(in, e)
			}
		} else {
			v.input = sha256.New()
			v.input.Write(prefix)
			in = append(in, v.input)
		}
		w := io.MultiWriter(in...)
		if s.b64 {
			v.enc = base64.NewEncoder(base64.RawURLEncoding, w)
			w = v.enc
		}
		sinks = append(sinks, w)
	default:
		return nil, fmt.Errorf("%s: unknown signature kind %q: %w", s.name, s.Kind, errdef.ErrInvalid)
	}
	v.w = io.MultiWriter(sinks...)
	return v, nil
}

func (v *Verifier) Write(p []byte) (int, error) {
	n, err := v.w.Write(p)
	v.size += int64(n)
	return n, err
}

// Finish checks the signature over what was written.
func (v *Verifier) Finish() (Verified, error) {
	s := v.sig
	if v.enc != nil {
		if err := v.enc.Close(); err != nil {
			return Verified{}, err
		}
	}
	sum := v.file.Sum(nil)
	out := Verified{Kind: s.Kind, Alg: s.Alg, SHA256: hex.EncodeToString(sum), Size: v.size}
	switch s.Kind {
	case manifest.MirrorSigDSSE:
		if err := s.dsse.statement.check(s.name, v.subject, out.SHA256, v.size); err != nil {
			return Verified{}, err
		}
		out.KeyID = v.dsseKey.ID
		return out, nil
	case manifest.MirrorSigCosign:
		ed := 0
		for _, k := range v.keys {
			ok, alg := false, k.Alg()
			switch pub := k.Public.(type) {
			case *ecdsa.PublicKey:
				ok = ecdsa.VerifyASN1(pub, sum, s.raw)
			case *rsa.PublicKey:
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum, s.raw) == nil
			case ed25519.PublicKey:
				ok = v.eds[ed].Verify()
				ed++
			}
			if ok {
				out.Alg, out.KeyID = alg, k.ID
				return out, nil
			}
		}
		return Verified{}, fmt.Errorf("%s: cosign signature does not verify with any trusted key (%s): %w", s.name, keyIDs(v.keys), errdef.ErrSignature)
	}
	var digest []byte
	if v.input != nil {
		digest = v.input.Sum(nil)
	}
	for i, k := range v.keys {
		ok := false
		switch s.Alg {
		case "EdDSA":
			ok = v.eds[i].Verify()
		case "ES256":
			pub := k.Public.(*ecdsa.PublicKey)
			if len(s.raw) == 64 {
				r, ss := new(big.Int).SetBytes(s.raw[:32]), new(big.Int).SetBytes(s.raw[32:])
				ok = ecdsa.Verify(pub, digest, r, ss)
			}
		case "RS256":
			ok = rsa.VerifyPKCS1v15(k.Public.(*rsa.PublicKey), crypto.SHA256, digest, s.raw) == nil
		case "PS256":
			ok = rsa.VerifyPSS(k.Public.(*rsa.PublicKey), crypto.SHA256, digest, s.raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		if ok {
			out.KeyID = k.ID
			return out, nil
		}
	}
	return Verified{}, fmt.Errorf("%s: JWS %s signature does not verify with trusted key %s: %w", s.name, s.Alg, keyIDs(v.keys), errdef.ErrSignature)
}

func keyIDs(ks []Key) string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = strconv.Quote(k.ID)
	}
	return strings.Join(ids, ", ")
}
