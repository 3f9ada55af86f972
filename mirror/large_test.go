package mirror

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	encasn1 "encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"runtime"
	"testing"

	"github.com/offkit/offkit/internal/copybuf"
)

// bundleStream is a JSON bundle of n bytes made up as it is read, never
// held in memory: {"generatedAt":"…","advisories":[{…},{…},…,{}]}.
type bundleStream struct {
	n, off int64
}

const (
	streamHead = `{"generatedAt":"2025-11-23T00:00:00Z","advisories":[`
	streamItem = `{"id":"CVE-2025-0001","summary":"a made-up advisory of a bundle too large to hold in memory","score":9.8},`
	streamTail = `{}]}`
)

func (s *bundleStream) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	n := 0
	head, tail := int64(len(streamHead)), int64(len(streamTail))
	bodyEnd := s.n - tail
	for n < len(p) && s.off < s.n {
		var k int
		switch {
		case s.off < head:
			k = copy(p[n:], streamHead[s.off:])
		case s.off >= bodyEnd:
			k = copy(p[n:], streamTail[s.off-bodyEnd:])
		default:
			i := (s.off - head) % int64(len(streamItem))
			k = copy(p[n:min(len(p), n+int(bodyEnd-s.off))], streamItem[i:])
		}
		n += k
		s.off += int64(k)
	}
	return n, nil
}

// streamSize is the size of a stream of items whole items.
func streamSize(items int64) int64 {
	return int64(len(streamHead)) + items*int64(len(streamItem)) + int64(len(streamTail))
}

// TestVerifyLargeStream streams a bundle of about 384 MiB (96 MiB under
// the race detector) through the
// signature check and the JSON check, as Open does, and asserts that the
// memory allocated stays far below the bundle's size: the bundle is never
// materialised (neither by the test nor by the verifier).
func TestVerifyLargeStream(t *testing.T) {
	total := int64(384 << 20)
	if raceEnabled {
		total = 96 << 20
	}
	size := streamSize(total / int64(len(streamItem)))
	// Sign: ES256 over ASCII(header) || '.' || payload, streamed.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","b64":false,"crit":["b64"],"kid":"big"}`))
	h := sha256.New()
	io.WriteString(h, header+".")
	if _, err := io.Copy(h, &bundleStream{n: size}); err != nil {
		t.Fatal(err)
	}
	der, err := ec.Sign(nil, h.Sum(nil), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	r, s, err := parseASN1Sig(der)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	sigFile := header + ".." + base64.RawURLEncoding.EncodeToString(raw)
	keys, err := NewKeySet(Key{ID: "big", Public: &ec.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ParseSignature("big/bundle.json.jws", []byte(sigFile))
	if err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := sig.NewVerifier(keys, "bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	js := &jsonScan{}
	if _, err := copybuf.Copy(io.MultiWriter(v, js), &bundleStream{n: size}); err != nil {
		t.Fatal(err)
	}
	ver, err := v.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := js.end(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if ver.Size != size || ver.KeyID != "big" {
		t.Fatalf("verified %+v, want %d bytes", ver, size)
	}
	if g, present, ok := js.generatedAt(); !present || !ok || g != "2025-11-23T00:00:00Z" {
		t.Errorf("generatedAt %q", g)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("verified %d MiB, allocated %d KiB", size>>20, alloc>>10)
	if limit := uint64(8 << 20); alloc > limit {
		t.Errorf("allocated %d bytes while verifying %d bytes: over %d, the stream was buffered", alloc, size, limit)
	}
}

func parseASN1Sig(der []byte) (*big.Int, *big.Int, error) {
	var sig struct{ R, S *big.Int }
	_, err := asn1Unmarshal(der, &sig)
	return sig.R, sig.S, err
}

// FuzzEd25519Stream: the streaming Ed25519 check agrees with
// crypto/ed25519.Verify, for good signatures and for flipped bits, in any
// chunking.
func FuzzEd25519Stream(f *testing.F) {
	f.Add([]byte("bundle"), uint16(0), uint8(7), false)
	f.Add([]byte{}, uint16(3), uint8(1), true)
	f.Fuzz(func(t *testing.T, msg []byte, flip uint16, chunk uint8, tamper bool) {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, msg)
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		sig := ed25519.Sign(priv, msg)
		if tamper {
			sig[int(flip)%len(sig)] ^= 1 << (flip % 8)
		}
		s := newEd25519Stream(pub, sig)
		step := int(chunk) + 1
		for i := 0; i < len(msg); i += step {
			s.Write(msg[i:min(i+step, len(msg))])
		}
		if got, want := s.Verify(), ed25519.Verify(pub, msg, sig); got != want {
			t.Fatalf("stream %v, crypto/ed25519 %v", got, want)
		}
	})
}

var asn1Unmarshal = encasn1.Unmarshal
