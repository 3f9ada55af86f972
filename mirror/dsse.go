package mirror

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/manifest"
)

// dsseEnvelope is a DSSE envelope (secure-systems-lab/dsse, protocol v1)
// around a mirror statement.
type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"`
	Signatures  []dsseSignature `json:"signatures"`

	payload   []byte
	statement Statement
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Statement is the payload of a mirror bundle's DSSE envelope: what the
// signer vouches for. The purpose lives here, inside the signed bytes, so
// that it cannot be changed without breaking the signature:
//
//	{"purpose":"mirror-bundle",
//	 "subject":[{"name":"bundle.json","size":1234,"digest":{"sha256":"<hex>"}}]}
//
// The file checked must be a subject of the statement: the one of its base
// name (or the only one), with the same SHA-256 and, when given, size.
// Other fields are carried and ignored.
type Statement struct {
	Purpose string    `json:"purpose"`
	Subject []Subject `json:"subject"`
}

// Subject is one file a Statement vouches for.
type Subject struct {
	Name   string            `json:"name"`
	Size   *int64            `json:"size,omitempty"`
	Digest map[string]string `json:"digest"`
}

// maxDSSESignatures bounds the signatures of one envelope.
const maxDSSESignatures = 16

// PAE is DSSE's pre-authentication encoding of a payload: the bytes that
// are signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

func parseDSSE(name string, b []byte) (*Signature, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s: signature file is not JSON: %v: %w", name, err, errdef.ErrInvalid)
	}
	if _, ok := probe["protected"]; ok {
		return nil, fmt.Errorf("%s: a JWS in JSON serialization: only compact detached JWS is accepted: %w", name, errdef.ErrInvalid)
	}
	var env dsseEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%s: DSSE envelope: %v: %w", name, err, errdef.ErrInvalid)
	}
	if env.PayloadType != DSSEPayloadType {
		return nil, fmt.Errorf("%s: DSSE payloadType %q, want %q: %w", name, clip(env.PayloadType), DSSEPayloadType, errdef.ErrInvalid)
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		if p, err = base64.RawURLEncoding.DecodeString(env.Payload); err != nil {
			return nil, fmt.Errorf("%s: DSSE payload is not base64: %w", name, errdef.ErrInvalid)
		}
	}
	env.payload = p
	if len(env.Signatures) == 0 || len(env.Signatures) > maxDSSESignatures {
		return nil, fmt.Errorf("%s: DSSE envelope with %d signatures (want 1 to %d): %w", name, len(env.Signatures), maxDSSESignatures, errdef.ErrInvalid)
	}
	if err := json.Unmarshal(p, &env.statement); err != nil {
		return nil, fmt.Errorf("%s: DSSE payload is not a JSON statement: %v: %w", name, err, errdef.ErrInvalid)
	}
	s := &Signature{Kind: manifest.MirrorSigDSSE, Alg: "EdDSA", name: name, dsse: &env}
	if len(env.Signatures) == 1 {
		s.KeyID = env.Signatures[0].KeyID
	}
	return s, nil
}

// verify checks the envelope's signatures over PAE(payloadType, payload)
// with the trusted Ed25519 keys: one must verify. A signature whose keyid
// names an untrusted key is not tried.
func (e *dsseEnvelope) verify(name string, keys *KeySet) (Key, error) {
	msg := PAE(e.PayloadType, e.payload)
	var lastErr error
	for i, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			if sig, err = base64.RawURLEncoding.DecodeString(s.Sig); err != nil {
				return Key{}, fmt.Errorf("%s: DSSE signatures[%d].sig is not base64: %w", name, i, errdef.ErrInvalid)
			}
		}
		ks, err := keys.candidates("EdDSA", s.KeyID)
		if err != nil {
			lastErr = fmt.Errorf("%s: DSSE signatures[%d]: %w", name, i, err)
			continue
		}
		for _, k := range ks {
			if ed25519.Verify(k.Public.(ed25519.PublicKey), msg, sig) {
				return k, nil
			}
		}
		lastErr = fmt.Errorf("%s: DSSE signatures[%d] does not verify with trusted Ed25519 key %s: %w", name, i, keyIDs(ks), errdef.ErrSignature)
	}
	return Key{}, lastErr
}

// check reports whether the statement vouches, as a mirror bundle, for a
// file called subject with this digest and size.
func (st *Statement) check(name, subject, sha string, size int64) error {
	if st.Purpose != DSSEPurpose {
		return fmt.Errorf("%s: DSSE statement purpose %q: only %q is accepted: %w", name, st.Purpose, DSSEPurpose, errdef.ErrSignature)
	}
	var sub *Subject
	for i := range st.Subject {
		if st.Subject[i].Name == subject {
			sub = &st.Subject[i]
		}
	}
	if sub == nil && len(st.Subject) == 1 && st.Subject[0].Name == "" {
		sub = &st.Subject[0]
	}
	if sub == nil {
		return fmt.Errorf("%s: DSSE statement has no subject %q: %w", name, subject, errdef.ErrSignature)
	}
	if want := sub.Digest["sha256"]; want != sha {
		return fmt.Errorf("%s: DSSE statement subject %q has sha256 %q, the file has %s: %w", name, subject, want, sha, errdef.ErrSignature)
	}
	if sub.Size != nil && *sub.Size != size {
		return fmt.Errorf("%s: DSSE statement subject %q has size %d, the file has %d: %w", name, subject, *sub.Size, size, errdef.ErrSignature)
	}
	return nil
}
