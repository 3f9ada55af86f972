// Command mkmirror writes the feed mirror exports of the zastava-runtime
// example kit, signed with the committed TEST keys of testkeys/ (never use
// them for anything real):
//
//	go run ./examples/zastava-runtime/mkmirror -o examples/zastava-runtime/mirror
//
// It writes, under -o:
//
//	concelier/20251123T000000Z/mirror/index.json           domains primary and community
//	concelier/20251123T000000Z/mirror/primary/…            bundle.json.jws: a cosign blob signature (P-256),
//	                                                       so `cosign verify-blob --key keys/mirror-key.pub` checks it
//	concelier/20251123T000000Z/mirror/community/…          bundle.json.jws: an Ed25519 detached JWS (RFC 7797 b64:false)
//	concelier/latest -> 20251123T000000Z
//	excititor/20251123T000000Z/mirror/community/…          consensus json and openvex exports, ES256 detached JWS
//	excititor/latest -> 20251123T000000Z
//	keys/mirror-key.pub                                    the P-256 public key (PEM; key id mirror-p256 in kit.yaml)
//	keys/mirror-ed25519.jwk                                the Ed25519 public key (JWK, kid mirror-ed25519)
//
// Signatures are deterministic (Ed25519; ECDSA with RFC 6979 nonces), so
// two runs write the same bytes: the committed fixture is this command's
// output, and its test checks that.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/mirrortest"
)

// ExportID is the example exports' id, and At the time they were created
// (-export-id and -at write another export, as a later release would carry).
var (
	ExportID = "20251123T000000Z"
	At       = "2025-11-23T00:00:00Z"
)

func main() {
	out := flag.String("o", "examples/zastava-runtime/mirror", "output folder")
	keys := flag.String("keys", "examples/zastava-runtime/mkmirror/testkeys", "folder of the TEST private keys")
	flag.StringVar(&ExportID, "export-id", ExportID, "the exports' id")
	flag.StringVar(&At, "at", At, "the exports' created and generatedAt time (RFC 3339)")
	flag.Parse()
	if err := Write(*out, *keys); err != nil {
		fmt.Fprintln(os.Stderr, "mkmirror:", err)
		os.Exit(1)
	}
}

// Write writes the exports and public keys under out, signed with the keys
// of keyDir (mirror-ed25519.key, mirror-p256.key: PKCS #8 PEM).
func Write(out, keyDir string) error {
	ed, err := loadKey(filepath.Join(keyDir, "mirror-ed25519.key"))
	if err != nil {
		return err
	}
	ec, err := loadKey(filepath.Join(keyDir, "mirror-p256.key"))
	if err != nil {
		return err
	}
	edKey, ok1 := ed.(ed25519.PrivateKey)
	ecKey, ok2 := ec.(*ecdsa.PrivateKey)
	if !ok1 || !ok2 {
		return errors.New("testkeys: want an Ed25519 and a P-256 key")
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	err = mirrortest.Write(filepath.Join(out, "concelier"), "concelier", ExportID, []mirrortest.Domain{
		{ID: "primary", DisplayName: "Primary", Created: At,
			Signer: mirrortest.Signer{Kind: mirrortest.Cosign, Key: ecKey},
			Bundle: bundle("primary", At, []advisory{
				{"CVE-2025-10001", "zastava-observer: runtime event parser accepts oversized frames", "high", "1.4.2"},
				{"CVE-2025-10002", "zastava-webhook: admission cache keyed without namespace", "medium", "1.4.2"},
			})},
		{ID: "community", DisplayName: "Community", Created: At,
			Signer: mirrortest.Signer{Kind: mirrortest.JWS, Key: edKey, KeyID: "mirror-ed25519"},
			Bundle: bundle("community", At, []advisory{
				{"GHSA-example-0001", "community report: observer logs bearer tokens at debug level", "low", "1.4.1"},
			})},
	}, true)
	if err != nil {
		return err
	}
	es256 := mirrortest.Signer{Kind: mirrortest.JWS, Key: ecKey, KeyID: "mirror-p256"}
	err = mirrortest.Write(filepath.Join(out, "excititor"), "excititor", ExportID, []mirrortest.Domain{
		{ID: "community", DisplayName: "Community", GeneratedAt: At, Signer: es256, Exports: []mirrortest.ExportFile{
			{Key: "consensus", Format: "json", File: "consensus.json", Data: consensusJSON()},
			{Key: "consensus", Format: "openvex", File: "consensus.openvex.json", Data: openVEX()},
		}},
	}, true)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		return err
	}
	if err := write(filepath.Join(out, "keys", "mirror-key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err != nil {
		return err
	}
	jwk, err := json.MarshalIndent(jose.JSONWebKey{Key: edKey.Public(), KeyID: "mirror-ed25519", Algorithm: "EdDSA", Use: "sig"}, "", "  ")
	if err != nil {
		return err
	}
	return write(filepath.Join(out, "keys", "mirror-ed25519.jwk"), append(jwk, '\n'))
}

type advisory struct{ id, summary, severity, affected string }

func bundle(domain, at string, list []advisory) []byte {
	type adv struct {
		ID       string   `json:"advisoryKey"`
		Summary  string   `json:"summary"`
		Severity string   `json:"severity"`
		Affected []string `json:"affectedVersions"`
	}
	b := struct {
		SchemaVersion int    `json:"schemaVersion"`
		DomainID      string `json:"domainId"`
		GeneratedAt   string `json:"generatedAt"`
		Advisories    []adv  `json:"advisories"`
	}{1, domain, at, nil}
	for _, a := range list {
		b.Advisories = append(b.Advisories, adv{a.id, a.summary, a.severity, []string{"zastava " + a.affected}})
	}
	return mustJSON(b)
}

func consensusJSON() []byte {
	return mustJSON(map[string]any{
		"schemaVersion": 1, "generatedAt": At,
		"statements": []map[string]string{{"vulnerability": "CVE-2025-10001", "product": "pkg:oci/zastava-observer@1.4.2", "status": "affected"},
			{"vulnerability": "CVE-2025-10002", "product": "pkg:oci/zastava-observer@1.4.2", "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}},
	})
}

func openVEX() []byte {
	return mustJSON(map[string]any{
		"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://stella-ops.org/vex/example-consensus",
		"author": "Excititor example export", "timestamp": At, "version": 1,
		"statements": []map[string]any{{"vulnerability": map[string]string{"name": "CVE-2025-10002"},
			"products": []map[string]string{{"@id": "pkg:oci/zastava-observer@1.4.2"}}, "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}},
	})
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func loadKey(p string) (crypto.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: not PEM", p)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", p)
	}
	return s, nil
}

func write(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
