package kittest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/offkit/offkit/internal/mirrortest"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/manifest"
)

// SiteMirrorExport describes a feed-mirror export for MirrorSiteKit.
type SiteMirrorExport struct {
	Kind     string // "concelier" or "excititor"
	ExportID string
	Domains  []string
	// Created is the created (concelier) or generatedAt (excititor) time
	// its domains record.
	Created string
	// NoRecord leaves the export out of the manifest's mirror[].
	NoRecord bool
}

// Files returns the export's files as a kit carries them (kit path →
// content): the index, and per domain a manifest, bundle and signature
// (concelier) or a domain index and one JSON export with its signature
// (excititor). Signatures are placeholders: the site does not check them at
// install.
func (x SiteMirrorExport) Files() map[string]string {
	dir := "mirror/" + x.Kind + "/" + x.ExportID + "/mirror/"
	idx := `{"schemaVersion":1,"domains":[`
	for i, d := range x.Domains {
		if i > 0 {
			idx += ","
		}
		idx += fmt.Sprintf(`{"id":%q,"displayName":%q}`, d, d)
	}
	out := map[string]string{dir + "index.json": idx + "]}\n"}
	for _, d := range x.Domains {
		if x.Kind == "excititor" {
			out[dir+d+"/index.json"] = fmt.Sprintf(`{"schemaVersion":1,"domainId":%q,"generatedAt":%q,"exports":[{"exportKey":"consensus","format":"json","file":"consensus.json"}]}`+"\n", d, x.Created)
			out[dir+d+"/consensus.json"] = fmt.Sprintf(`{"export":%q,"domain":%q}`+"\n", x.ExportID, d)
			out[dir+d+"/consensus.json.jws"] = "placeholder..signature\n"
			continue
		}
		out[dir+d+"/manifest.json"] = fmt.Sprintf(`{"domainId":%q,"created":%q,"schemaVersion":1}`+"\n", d, x.Created)
		out[dir+d+"/bundle.json"] = fmt.Sprintf(`{"export":%q,"domain":%q,"advisories":[]}`+"\n", x.ExportID, d)
		out[dir+d+"/bundle.json.jws"] = "placeholder..signature\n"
	}
	return out
}

// Record returns the export's mirror[] record as a build writes it: sorted
// domains, created (concelier) or generatedAt (excititor), and each signed
// file with its placeholder signature.
func (x SiteMirrorExport) Record() manifest.Mirror {
	r := manifest.Mirror{Kind: x.Kind, ExportID: x.ExportID, Domains: append([]string{}, x.Domains...)}
	sort.Strings(r.Domains)
	if t, err := time.Parse(time.RFC3339, x.Created); err == nil {
		if x.Kind == "excititor" {
			r.GeneratedAt = &t
		} else {
			r.Created = &t
		}
	}
	files := x.Files()
	for _, d := range r.Domains {
		name := "bundle.json"
		if x.Kind == "excititor" {
			name = "consensus.json"
		}
		p := manifest.MirrorPrefix(x.Kind, x.ExportID) + d + "/" + name
		sum := sha256.Sum256([]byte(files[p]))
		f := manifest.MirrorFile{Domain: d, Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(files[p])),
			Signature: &manifest.MirrorSignature{Path: p + ".jws", Kind: manifest.MirrorSigJWS, KeyID: "test", Alg: "EdDSA"}}
		if x.Kind == "excititor" {
			f.ExportKey, f.Format = "consensus", "json"
		}
		r.Files = append(r.Files, f)
	}
	return r
}

// MirrorSiteKit writes into dir a kit name at version, signed by key, that
// carries the exports (files and mirror[] records) and the extra entries
// (kit path → content, for hostile layouts), and returns its path.
func MirrorSiteKit(t testing.TB, key *Key, dir, name, version string, extra map[string]string, exports ...SiteMirrorExport) string {
	t.Helper()
	files := map[string]string{}
	var records []manifest.Mirror
	for _, x := range exports {
		for p, c := range x.Files() {
			files[p] = c
		}
		if !x.NoRecord {
			records = append(records, x.Record())
		}
	}
	for p, c := range extra {
		files[p] = c
	}
	var entries []Entry
	for p, c := range files {
		entries = append(entries, File(p, []byte(c)))
	}
	m := ManifestFor(entries)
	m.Name, m.Version, m.Mirror = name, version, records
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Header.Name] = e
	}
	content := make([]Entry, 0, len(entries))
	for _, e := range m.Entries {
		content = append(content, byName[e.Path])
	}
	return (&Craft{Content: content, Manifest: m, Key: key}).Write(t, filepath.Join(dir, name+"-"+version+".kit.tar.zst"))
}

// SignedMirrorKit builds (kit.Build) a kit name at version, signed by key,
// from real exports: for each id of concelierIDs a Concelier export (domain
// primary: a detached JWS; community: a cosign blob signature) and for each
// of excititorIDs an Excititor export (domain community: json and openvex,
// JWS), all signed with mirrorKey, whose public key it writes as a JWK
// (kid "mirror-ed25519") to keyFile.
func SignedMirrorKit(t testing.TB, key *Key, mirrorKey ed25519.PrivateKey, name, version string, concelierIDs, excititorIDs []string) (kitPath, keyFile string) {
	t.Helper()
	return SignedMirrorKitSized(t, key, mirrorKey, name, version, concelierIDs, excititorIDs, 0)
}

// SignedMirrorKitSized is SignedMirrorKit with each Concelier primary bundle
// padded to at least bundleSize bytes (a "pad" string of noise).
func SignedMirrorKitSized(t testing.TB, key *Key, mirrorKey ed25519.PrivateKey, name, version string, concelierIDs, excititorIDs []string, bundleSize int) (kitPath, keyFile string) {
	t.Helper()
	pad := make([]byte, bundleSize)
	for i := range pad {
		pad[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7919)>>3%36]
	}
	dir := t.TempDir()
	jws := mirrortest.Signer{Kind: mirrortest.JWS, Key: mirrorKey, KeyID: "mirror-ed25519"}
	spec := &manifest.Spec{Name: name, Version: version, CreatedAt: &Created}
	keys := []manifest.MirrorKey{{Path: "mirror-ed25519.jwk"}}
	for _, id := range concelierIDs {
		created := id[:4] + "-" + id[4:6] + "-" + id[6:8] + "T00:00:00Z"
		if err := mirrortest.Write(filepath.Join(dir, "concelier"), "concelier", id, []mirrortest.Domain{
			{ID: "primary", DisplayName: "Primary", Created: created, Signer: jws, Bundle: []byte(`{"generatedAt":"` + created + `","advisories":[{"id":"CVE-2025-0001","export":"` + id + `"}],"pad":"` + string(pad) + `"}`)},
			{ID: "community", DisplayName: "Community", Created: created, Signer: mirrortest.Signer{Kind: mirrortest.Cosign, Key: mirrorKey}, Bundle: []byte(`{"advisories":[]}`)},
		}, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range excititorIDs {
		if err := mirrortest.Write(filepath.Join(dir, "excititor"), "excititor", id, []mirrortest.Domain{
			{ID: "community", GeneratedAt: id[:4] + "-" + id[4:6] + "-" + id[6:8] + "T01:00:00Z", Signer: jws, Exports: []mirrortest.ExportFile{
				{Key: "consensus", Format: "json", File: "consensus.json", Data: []byte(`{"statements":[]}`)},
				{Key: "consensus", Format: "openvex", File: "consensus.openvex.json", Data: []byte(`{"statements":[]}`)},
			}},
		}, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range concelierIDs {
		spec.Mirror = append(spec.Mirror, manifest.MirrorSource{Kind: "concelier", Root: "concelier", ExportID: id, Keys: keys})
	}
	for _, id := range excititorIDs {
		spec.Mirror = append(spec.Mirror, manifest.MirrorSource{Kind: "excititor", Root: "excititor", ExportID: id, Keys: keys})
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: mirrorKey.Public(), KeyID: "mirror-ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "mirror-ed25519.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := kit.Build(context.Background(), spec, kit.BuildOptions{
		Dir: dir, OutDir: t.TempDir(), Key: key.Private, Builder: manifest.Builder{Name: "offkit", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Path, keyFile
}
