// Package manifest defines the kit manifest (offkit/manifest.json) and the
// kit spec (kit.yaml) as Go types, with their canonical encoding and their
// validation.
//
// # The kit manifest
//
// The manifest is canonical JSON: the field order of the Go types below,
// two-space indent, a final newline, UTC times with a "Z" and whole seconds,
// lowercase hex. Parse refuses any manifest that does not re-encode to the
// very bytes it was given, so two builders that agree on the content agree on
// the bytes, and a signature over the bytes commits to one meaning.
//
// Rules checked by Parse, each failing with errdef.ErrInvalid and the field at
// fault:
//   - the bytes are at most MaxManifestSize and valid against
//     schemas/manifest.schema.json;
//   - every entry path is a clean, relative, slash-separated path of at most
//     MaxPathLen bytes (each element at most MaxNameLen), with no "..", ".",
//     empty element, backslash, NUL or control character;
//   - every entry path lies in a content folder, and its role follows from
//     it (RoleOf): images/oci-layout and images/index.json (image-index),
//     images/blobs/sha256/<64 lowercase hex> named by the entry's own sha256
//     (image-blob), rules/ (rules), dashboards/ (dashboard), mirror/
//     (mirror), debug/ (debug), authority/ (authority), files/ (file).
//     Nothing else: not the kit's head (offkit/, SHA256SUMS), not a name the
//     site reserves for itself (.offkit/);
//   - entry paths are sorted and unique, and unique under Fold (full Unicode
//     case folding and canonical normalisation: "A"/"a", NFC/NFD, "ſ"/"s");
//   - no entry path is also a directory of another entry (under Fold too);
//   - sizes are non-negative and sum to at most MaxTotalSize without overflow;
//   - no delta fields: delta kits are not built yet, so a manifest with a
//     base, or with entries marked inBase, is refused;
//   - each images[].signedBy[].signature is one of the image's signatures.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

// SchemaVersion is the version of the kit format this package reads and writes.
const SchemaVersion = 1

// Limits on untrusted manifests.
const (
	MaxManifestSize = 32 << 20 // bytes of offkit/manifest.json
	MaxEntries      = 1 << 20  // entries in one kit
	MaxPathLen      = 1024     // bytes of one entry path
	MaxTotalSize    = 1 << 50  // bytes of all entries together (1 PiB)
)

// Role says what an entry is for.
type Role string

// The roles of kit entries.
const (
	RoleImageBlob  Role = "image-blob"
	RoleImageIndex Role = "image-index"
	RoleRules      Role = "rules"
	RoleDashboard  Role = "dashboard"
	RoleMirror     Role = "mirror"
	RoleDebug      Role = "debug"
	RoleAuthority  Role = "authority"
	RoleFile       Role = "file"
)

// Manifest is the content of offkit/manifest.json.
type Manifest struct {
	SchemaVersion        int         `json:"schemaVersion"`
	Name                 string      `json:"name"`
	Version              string      `json:"version"`
	CreatedAt            time.Time   `json:"createdAt"`
	ExpiresAt            *time.Time  `json:"expiresAt,omitempty"`
	StalenessWindowHours int         `json:"stalenessWindowHours,omitempty"`
	Builder              Builder     `json:"builder"`
	Compression          Compression `json:"compression"`
	Signer               *Signer     `json:"signer,omitempty"`
	Base                 *Base       `json:"base,omitempty"`
	Entries              []Entry     `json:"entries"`
	Images               []Image     `json:"images,omitempty"`
	Debug                []Debug     `json:"debug,omitempty"`
	Mirror               []Mirror    `json:"mirror,omitempty"`
	Authority            []Authority `json:"authority,omitempty"`
}

// Builder names the program that built the kit.
type Builder struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Compression records the encoder settings, for rebuilders.
type Compression struct {
	Algorithm string `json:"algorithm"` // "zstd"
	Level     int    `json:"level"`
	FrameSize int64  `json:"frameSize"`
}

// Signer identifies the key that signed the manifest.
type Signer struct {
	KeyID string `json:"keyId"` // "sha256:" + hex of the PKIX DER public key
}

// Base identifies the kit a delta kit was built against.
type Base struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	ManifestDigest string `json:"manifestDigest"`
}

// Entry is one file of the kit.
type Entry struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	MediaType string `json:"mediaType,omitempty"`
	Role      Role   `json:"role"`
	// InBase marks an entry of a delta kit that is not shipped: the base kit
	// carries it.
	InBase bool `json:"inBase,omitempty"`
}

// Image is one image of the kit, pinned by digest.
type Image struct {
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Platforms []string `json:"platforms,omitempty"`
	// Signatures lists the digests of the cosign signature manifests carried
	// for this image (tag sha256-<hex>.sig in its repository).
	Signatures []string `json:"signatures,omitempty"`
	// SignedBy lists the cosign signatures that vouched for the image when
	// the kit was built (kit.yaml images[].verify), so that a site can check
	// them again from the kit alone.
	SignedBy []ImageSignature `json:"signedBy,omitempty"`
}

// ImageSignature is one cosign signature of an image, checked at build time.
// Each digest names a blob of the kit's image layout,
// images/blobs/sha256/<hex>.
type ImageSignature struct {
	// KeyID is the id of the key that signed ("sha256:" + hex of its PKIX
	// DER). The DER itself is the blob of that digest: the kit carries the
	// key, and the key id names it.
	KeyID string `json:"keyId"`
	// Signature is the digest of the signature manifest (one of the image's
	// Signatures); its simple-signing layer Payload carries the signature.
	Signature string `json:"signature"`
	// Payload is the digest of the simple-signing payload that names the
	// image's digest.
	Payload string `json:"payload"`
}

// Debug is one separate debug file.
type Debug struct {
	BuildID string `json:"buildId"`
	Path    string `json:"path"`
	Arch    string `json:"arch,omitempty"`
	Image   string `json:"image,omitempty"`
	// ImagePath is the file's path inside Image (a debug source of kind
	// image).
	ImagePath string `json:"imagePath,omitempty"`
	Component string `json:"component,omitempty"`
}

// The kinds of feed mirror export (Mirror.Kind).
const (
	MirrorConcelier = "concelier"
	MirrorExcititor = "excititor"
)

// The kinds of signature a mirror file carries (MirrorSignature.Kind).
const (
	MirrorSigJWS    = "jws"    // detached JWS (RFC 7515 appendix F, RFC 7797)
	MirrorSigCosign = "cosign" // cosign blob signature (base64 of the raw signature)
	MirrorSigDSSE   = "dsse"   // DSSE envelope, purpose mirror-bundle
)

// Mirror is one feed mirror export carried by the kit, checked when the kit
// was built (docs/mirror.md). Its files are entries of the kit under
// mirror/<kind>/<exportId>/mirror/; every entry there belongs to it.
type Mirror struct {
	Kind     string   `json:"kind"` // MirrorConcelier or MirrorExcititor
	ExportID string   `json:"exportId"`
	Domains  []string `json:"domains,omitempty"`
	// Created is the newest "created" of the domains' manifest.json
	// (Concelier); GeneratedAt the newest "generatedAt" of the bundles or
	// the per-domain indexes. Both UTC, whole seconds.
	Created     *time.Time `json:"created,omitempty"`
	GeneratedAt *time.Time `json:"generatedAt,omitempty"`
	// Files are the signed files of the export (Concelier bundle.json,
	// Excititor exports), sorted by path.
	Files []MirrorFile `json:"files,omitempty"`
}

// MirrorFile is one signed file of a mirror export.
type MirrorFile struct {
	Domain string `json:"domain"`
	Path   string `json:"path"` // kit path of the file
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// ExportKey and Format are an Excititor export's (its domain index).
	ExportKey string           `json:"exportKey,omitempty"`
	Format    string           `json:"format,omitempty"`
	Signature *MirrorSignature `json:"signature,omitempty"`
}

// MirrorSignature is the detached signature that vouched for a mirror file.
type MirrorSignature struct {
	Path  string `json:"path"`  // kit path of the signature file
	Kind  string `json:"kind"`  // MirrorSigJWS, MirrorSigCosign or MirrorSigDSSE
	KeyID string `json:"keyId"` // the trusted key that verified it
	Alg   string `json:"alg"`   // ES256, EdDSA, RS256, PS256 (JWS/DSSE: the signature's; cosign: the key's)
}

// MirrorPrefix returns the kit folder of an export,
// "mirror/<kind>/<exportId>/mirror/".
func MirrorPrefix(kind, exportID string) string {
	return "mirror/" + kind + "/" + exportID + "/mirror/"
}

// Authority is one Authority metadata snapshot.
type Authority struct {
	Issuer    string    `json:"issuer"`
	FetchedAt time.Time `json:"fetchedAt"`
}

// Encode returns the canonical bytes of m: encoding/json's, indented by two
// spaces, with a final newline.
func (m *Manifest) Encode() ([]byte, error) {
	if len(m.Entries) > 0 {
		return m.encodeFast()
	}
	return m.encodeJSON()
}

// encodeJSON is Encode by encoding/json alone.
func (m *Manifest) encodeJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// TotalSize returns the sum of the sizes of the shipped entries.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Entries {
		if !e.InBase {
			n += e.Size
		}
	}
	return n
}

// Expired reports whether the kit has expired at now.
func (m *Manifest) Expired(now time.Time) bool {
	return m.ExpiresAt != nil && !now.Before(*m.ExpiresAt)
}

// FileName returns NAME-VERSION.kit.tar.zst.
func (m *Manifest) FileName() string {
	return m.Name + "-" + m.Version + ".kit.tar.zst"
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdef.ErrInvalid)
}
