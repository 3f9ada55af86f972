package mirror

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"hash"

	"filippo.io/edwards25519"
)

// ed25519Stream checks a pure Ed25519 signature (RFC 8032) over a message
// that is streamed through it rather than held in memory: Ed25519 hashes
// the message once, as SHA-512(R || A || M), so the hash can be fed as the
// bytes go by and the curve equation checked at the end. The check is the
// one crypto/ed25519.Verify makes (canonical S, cofactorless equation,
// encoded R compared), on filippo.io/edwards25519, the library the standard
// one is built from.
type ed25519Stream struct {
	pub ed25519.PublicKey
	sig []byte
	h   hash.Hash
}

// newEd25519Stream starts a check of sig by pub; write the message to
// Write, then call Verify.
func newEd25519Stream(pub ed25519.PublicKey, sig []byte) *ed25519Stream {
	s := &ed25519Stream{pub: pub, sig: sig, h: sha512.New()}
	if len(sig) == ed25519.SignatureSize && len(pub) == ed25519.PublicKeySize {
		s.h.Write(sig[:32])
		s.h.Write(pub)
	}
	return s
}

func (s *ed25519Stream) Write(p []byte) (int, error) { return s.h.Write(p) }

// Verify reports whether the signature is valid for what was written.
func (s *ed25519Stream) Verify() bool {
	if len(s.sig) != ed25519.SignatureSize || len(s.pub) != ed25519.PublicKeySize || s.sig[63]&224 != 0 {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(s.pub)
	if err != nil {
		return false
	}
	k, err := edwards25519.NewScalar().SetUniformBytes(s.h.Sum(nil))
	if err != nil {
		return false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(s.sig[32:])
	if err != nil {
		return false
	}
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, minusA, S)
	return subtle.ConstantTimeCompare(s.sig[:32], R.Bytes()) == 1
}
