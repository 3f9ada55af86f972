package kittest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offkit/offkit/internal/mirrortest"
)

// MirrorExport describes one feed-mirror export for MirrorGeneration.
type MirrorExport struct {
	Kind     string // "concelier" or "excititor"
	ExportID string // 20251123T000000Z
	Created  string // RFC 3339; the bundles' generatedAt
	Domains  []string
	// BundleSize pads each Concelier bundle to at least this many bytes.
	BundleSize int
	// Cosign, when set, signs Concelier bundles with a cosign blob
	// signature (base64 of an ECDSA signature over the bundle's sha256)
	// instead of a detached JWS.
	Cosign *ecdsa.PrivateKey
}

// MirrorFiles are the files MirrorGeneration wrote, by path in the
// generation.
type MirrorFiles map[string][]byte

// MirrorGeneration writes the exports into the generation folder dir as a
// site installs them (mirror/<kind>/<exportId>/mirror/…, a latest link per
// kind) and the generation's .offkit/mirror/exports.json listing them.
// Bundles and Excititor exports are signed with key: a detached JWS (EdDSA,
// RFC 7515 appendix F, the payload base64url-encoded in the signing input).
func MirrorGeneration(dir string, key ed25519.PrivateKey, exports ...MirrorExport) (MirrorFiles, error) {
	files := MirrorFiles{}
	type fileRec struct {
		Path   string `json:"path"`
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
	}
	type exportRec struct {
		Kind        string    `json:"kind"`
		ExportID    string    `json:"exportId"`
		Kit         string    `json:"kit"`
		KitVersion  string    `json:"kitVersion"`
		Retained    bool      `json:"retained"`
		Domains     []string  `json:"domains"`
		Created     string    `json:"created,omitempty"`
		GeneratedAt string    `json:"generatedAt,omitempty"`
		Files       []fileRec `json:"files"`
	}
	var recs []exportRec
	latest := map[string]string{}
	for _, ex := range exports {
		base := path.Join("mirror", ex.Kind, ex.ExportID, "mirror")
		rec := exportRec{Kind: ex.Kind, ExportID: ex.ExportID, Kit: "mirror-fixture", KitVersion: "1.0.0",
			Domains: ex.Domains, Created: ex.Created, GeneratedAt: ex.Created}
		put := func(rel string, b []byte) {
			p := path.Join(base, rel)
			files[p] = b
			sum := sha256.Sum256(b)
			rec.Files = append(rec.Files, fileRec{Path: p, Size: len(b), SHA256: hex.EncodeToString(sum[:])})
		}
		var doms []map[string]string
		for _, d := range ex.Domains {
			doms = append(doms, map[string]string{"id": d, "displayName": strings.ToUpper(d[:1]) + d[1:]})
		}
		idx, _ := json.MarshalIndent(map[string]any{"schemaVersion": 1, "exportId": ex.ExportID, "generatedAt": ex.Created, "domains": doms}, "", "  ")
		put("index.json", idx)
		for _, d := range ex.Domains {
			switch ex.Kind {
			case "concelier":
				pad := strings.Repeat("x", max(ex.BundleSize-200, 0))
				bundle, _ := json.Marshal(map[string]any{"domainId": d, "generatedAt": ex.Created, "schemaVersion": 1,
					"advisories": []map[string]string{{"id": "CVE-2025-0001", "summary": "fixture " + ex.ExportID}}, "padding": pad})
				sig, err := signBlob(bundle, key, ex.Cosign)
				if err != nil {
					return nil, err
				}
				sum := sha256.Sum256(bundle)
				man, _ := json.MarshalIndent(map[string]any{"domainId": d, "created": ex.Created, "schemaVersion": 1,
					"bundle": map[string]any{"path": "bundle.json", "sha256": hex.EncodeToString(sum[:]), "size": len(bundle)}}, "", "  ")
				put(d+"/manifest.json", man)
				put(d+"/bundle.json", bundle)
				put(d+"/bundle.json.jws", sig)
			case "excititor":
				consensus, _ := json.Marshal(map[string]any{"domainId": d, "generatedAt": ex.Created, "statements": []string{"CVE-2025-0001 not_affected"}})
				jsonl := []byte(`{"vulnerability":"CVE-2025-0001","status":"not_affected"}` + "\n")
				sig, err := signBlob(consensus, key, nil)
				if err != nil {
					return nil, err
				}
				put(d+"/consensus.json", consensus)
				put(d+"/consensus.json.jws", sig)
				put(d+"/statements.jsonl", jsonl)
				var list []map[string]any
				for _, e := range [][3]string{{"consensus", "json", "consensus.json"}, {"statements", "jsonl", "statements.jsonl"}} {
					b := files[path.Join(base, d, e[2])]
					s := sha256.Sum256(b)
					list = append(list, map[string]any{"exportKey": e[0], "format": e[1], "file": e[2], "sha256": hex.EncodeToString(s[:]), "size": len(b)})
				}
				di, _ := json.MarshalIndent(map[string]any{"schemaVersion": 1, "domainId": d, "generatedAt": ex.Created, "exports": list}, "", "  ")
				put(d+"/index.json", di)
			default:
				return nil, fmt.Errorf("mirror fixture: unknown kind %q", ex.Kind)
			}
		}
		sort.Slice(rec.Files, func(i, j int) bool { return rec.Files[i].Path < rec.Files[j].Path })
		recs = append(recs, rec)
		if ex.ExportID > latest[ex.Kind] {
			latest[ex.Kind] = ex.ExportID
		}
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(full, b, 0o444); err != nil {
			return nil, err
		}
	}
	for kind, id := range latest {
		if err := os.Symlink(id, filepath.Join(dir, "mirror", kind, "latest")); err != nil {
			return nil, err
		}
	}
	ej, err := json.MarshalIndent(map[string]any{"exports": recs, "latest": latest}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, ".offkit", "mirror"), 0o755); err != nil {
		return nil, err
	}
	return files, os.WriteFile(filepath.Join(dir, ".offkit", "mirror", "exports.json"), ej, 0o444)
}

// signBlob is a detached JWS over b with key (EdDSA, payload
// base64url-encoded), or a cosign blob signature with cosignKey when it is
// set.
func signBlob(b []byte, key ed25519.PrivateKey, cosignKey *ecdsa.PrivateKey) ([]byte, error) {
	s := mirrortest.Signer{Kind: mirrortest.JWSEncoded, Key: key, KeyID: "mirror-fixture"}
	if cosignKey != nil {
		s = mirrortest.Signer{Kind: mirrortest.Cosign, Key: cosignKey}
	}
	return s.Sign("", b)
}

// MirrorSite makes root a site that `offkit serve` serves the exports
// from without a kit: generation 1 holding them (MirrorGeneration), a
// generation state and `current` pointing at it. It stands in for an
// installed kit in tests of the mirror routes.
func MirrorSite(root string, key ed25519.PrivateKey, exports ...MirrorExport) (MirrorFiles, error) {
	gen := filepath.Join(root, "generations", "1")
	files, err := MirrorGeneration(gen, key, exports...)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(gen, ".offkit", "state.json"), []byte(`{"generation":1,"kits":[]}`+"\n"), 0o444); err != nil {
		return nil, err
	}
	return files, os.Symlink(filepath.Join("generations", "1"), filepath.Join(root, "current"))
}
