// Package mirrortest writes Concelier and Excititor mirror exports signed
// with test keys, for tests and the example kit's generator. Signatures
// are deterministic (Ed25519; ECDSA with RFC 6979 nonces), so the same keys
// and content give the same files.
package mirrortest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/offkit/offkit/mirror"
)

// Kinds of signature a Signer writes.
const (
	JWS        = "jws"       // compact detached JWS, RFC 7797 b64:false with crit ["b64"]
	JWSEncoded = "jws-b64"   // compact detached JWS, payload base64url-encoded (RFC 7515 appendix F)
	Cosign     = "cosign"    // base64 of the raw signature, as cosign sign-blob writes it
	DSSE       = "dsse"      // DSSE envelope with a mirror-bundle statement
	JWSPS256   = "jws-ps256" // JWS b64:false signed with RSA-PSS (random salt: not deterministic)
)

// Signer signs mirror files.
type Signer struct {
	Kind  string
	Key   crypto.Signer // *ecdsa.PrivateKey (P-256), ed25519.PrivateKey or *rsa.PrivateKey
	KeyID string        // JWS kid / DSSE keyid; "" names none
	// Purpose overrides the DSSE statement's purpose (tests of refusal).
	Purpose string
}

// Alg is the JWS alg of the signer's key.
func (s Signer) Alg() string {
	switch s.Key.(type) {
	case *ecdsa.PrivateKey:
		return "ES256"
	case ed25519.PrivateKey:
		return "EdDSA"
	}
	if s.Kind == JWSPS256 {
		return "PS256"
	}
	return "RS256"
}

// Sign returns the signature file of a file called name holding data.
func (s Signer) Sign(name string, data []byte) ([]byte, error) {
	switch s.Kind {
	case JWS, JWSEncoded, JWSPS256:
		hdr := map[string]any{"alg": s.Alg()}
		if s.KeyID != "" {
			hdr["kid"] = s.KeyID
		}
		if s.Kind != JWSEncoded {
			hdr["b64"] = false
			hdr["crit"] = []string{"b64"}
		}
		hb, err := json.Marshal(hdr)
		if err != nil {
			return nil, err
		}
		h := base64.RawURLEncoding.EncodeToString(hb)
		input := []byte(h + ".")
		if s.Kind == JWSEncoded {
			input = append(input, base64.RawURLEncoding.EncodeToString(data)...)
		} else {
			input = append(input, data...)
		}
		sig, err := s.raw(input, true)
		if err != nil {
			return nil, err
		}
		return []byte(h + ".." + base64.RawURLEncoding.EncodeToString(sig)), nil
	case Cosign:
		sig, err := s.raw(data, false)
		if err != nil {
			return nil, err
		}
		return []byte(base64.StdEncoding.EncodeToString(sig)), nil
	case DSSE:
		sum := sha256.Sum256(data)
		purpose := s.Purpose
		if purpose == "" {
			purpose = mirror.DSSEPurpose
		}
		size := int64(len(data))
		st, err := json.Marshal(mirror.Statement{Purpose: purpose, Subject: []mirror.Subject{{Name: name, Size: &size, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}}})
		if err != nil {
			return nil, err
		}
		ed, ok := s.Key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a DSSE mirror envelope is signed with Ed25519")
		}
		sig := ed25519.Sign(ed, mirror.PAE(mirror.DSSEPayloadType, st))
		return json.Marshal(map[string]any{
			"payloadType": mirror.DSSEPayloadType,
			"payload":     base64.StdEncoding.EncodeToString(st),
			"signatures":  []map[string]string{{"keyid": s.KeyID, "sig": base64.StdEncoding.EncodeToString(sig)}},
		})
	}
	return nil, fmt.Errorf("unknown signature kind %q", s.Kind)
}

// raw signs msg: Ed25519 over msg, ECDSA and RSA over its SHA-256; a JWS
// ECDSA signature is r||s, a cosign one ASN.1.
func (s Signer) raw(msg []byte, jws bool) ([]byte, error) {
	switch k := s.Key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(msg)
		der, err := k.Sign(nil, d[:], crypto.SHA256) // RFC 6979
		if err != nil || !jws {
			return der, err
		}
		var r, ss big.Int
		var inner cryptobyte.String
		in := cryptobyte.String(der)
		if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&ss) {
			return nil, fmt.Errorf("bad ECDSA signature")
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		ss.FillBytes(out[32:])
		return out, nil
	case *rsa.PrivateKey:
		d := sha256.Sum256(msg)
		if s.Kind == JWSPS256 {
			return rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
	}
	return nil, fmt.Errorf("key type %T", s.Key)
}

// Domain is one domain of an export.
type Domain struct {
	ID, DisplayName string
	// Concelier
	Created string // manifest.json "created"
	Bundle  []byte
	// Excititor
	GeneratedAt string
	Exports     []ExportFile
	Signer      Signer
}

// ExportFile is one Excititor export of a domain.
type ExportFile struct {
	Key, Format, File string
	Data              []byte
}

// Write writes the export exportID of kind ("concelier" or "excititor")
// under root and points root/latest at it when latest is set.
func Write(root, kind, exportID string, domains []Domain, latest bool) error {
	dir := filepath.Join(root, exportID, "mirror")
	var list []map[string]string
	for _, d := range domains {
		list = append(list, map[string]string{"id": d.ID, "displayName": d.DisplayName})
	}
	if err := writeJSON(filepath.Join(dir, "index.json"), map[string]any{"schemaVersion": 1, "domains": list}); err != nil {
		return err
	}
	for _, d := range domains {
		dd := filepath.Join(dir, d.ID)
		if kind == "concelier" {
			if err := writeJSON(filepath.Join(dd, "manifest.json"), map[string]any{"domainId": d.ID, "created": d.Created, "schemaVersion": 1, "displayName": d.DisplayName}); err != nil {
				return err
			}
			if err := signed(dd, "bundle.json", d.Bundle, d.Signer); err != nil {
				return err
			}
			continue
		}
		var exports []map[string]any
		for _, x := range d.Exports {
			sum := sha256.Sum256(x.Data)
			exports = append(exports, map[string]any{"exportKey": x.Key, "format": x.Format, "file": x.File, "sha256": hex.EncodeToString(sum[:]), "size": len(x.Data)})
			if err := signed(dd, x.File, x.Data, d.Signer); err != nil {
				return err
			}
		}
		if err := writeJSON(filepath.Join(dd, "index.json"), map[string]any{"schemaVersion": 1, "domainId": d.ID, "generatedAt": d.GeneratedAt, "exports": exports}); err != nil {
			return err
		}
	}
	if latest {
		link := filepath.Join(root, "latest")
		os.Remove(link)
		return os.Symlink(exportID, link)
	}
	return nil
}

func signed(dir, name string, data []byte, s Signer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		return err
	}
	sig, err := s.Sign(name, data)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".jws"), sig, 0o644)
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}
