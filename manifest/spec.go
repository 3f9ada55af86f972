package manifest

import (
	"bytes"
	"encoding/json"
	"time"
)

// Spec is a kit.yaml: what a release engineer declares and offkit build
// collects. Paths in a spec are relative to the spec's folder.
type Spec struct {
	Name                 string         `json:"name"`
	Version              string         `json:"version"`
	CreatedAt            *time.Time     `json:"createdAt,omitempty"`
	ExpiresAt            *time.Time     `json:"expiresAt,omitempty"`
	StalenessWindowHours int            `json:"stalenessWindowHours,omitempty"`
	Compression          *SpecCompress  `json:"compression,omitempty"`
	Images               []ImageSource  `json:"images,omitempty"`
	Rules                []FileSource   `json:"rules,omitempty"`
	Dashboards           []FileSource   `json:"dashboards,omitempty"`
	Files                []FileSource   `json:"files,omitempty"`
	Mirror               []MirrorSource `json:"mirror,omitempty"`
	Debug                []DebugSource  `json:"debug,omitempty"`
	// Authority: issuer metadata snapshots (AuthoritySource).
	Authority []AuthoritySource `json:"authority,omitempty"`
}

// SpecCompress overrides the default encoder settings.
type SpecCompress struct {
	Level     int   `json:"level,omitempty"`
	FrameSize int64 `json:"frameSize,omitempty"`
}

// ImageSource is one image to collect. Ref is the reference the image has in
// the kit (and, without Layout or Archive, where it is pulled from). Ref may
// carry a tag, a digest, or both.
type ImageSource struct {
	Ref string `json:"ref"`
	// Layout is an OCI image layout folder to take the image from; LayoutRef
	// picks the manifest by its org.opencontainers.image.ref.name annotation
	// (needed when the layout holds more than one).
	Layout    string `json:"layout,omitempty"`
	LayoutRef string `json:"layoutRef,omitempty"`
	// Archive is a docker-archive tarball (docker save) to take the image
	// from; ArchiveTag picks the image when the archive holds more than one.
	Archive    string `json:"archive,omitempty"`
	ArchiveTag string `json:"archiveTag,omitempty"`
	// Platforms keeps only these platforms ("linux/amd64", "linux/arm64/v8")
	// of a multi-arch index; empty keeps the index whole.
	Platforms []string `json:"platforms,omitempty"`
	// PlainHTTP pulls over http (loopback test registries).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// Verify requires a cosign signature of the image by the key at build
	// time; the kit records it (Image.SignedBy) and carries it.
	Verify *ImageVerify `json:"verify,omitempty"`
}

// ImageVerify names the cosign public key an image must be signed by: a PEM
// file, relative to the spec's folder.
type ImageVerify struct {
	Key string `json:"key"`
}

// FileSource is a file or folder to copy into the kit. Src is a file or a
// folder (copied recursively, regular files only); Dest is where it goes under
// the role's folder (rules/, dashboards/, files/, mirror/, debug/); it defaults
// to the base name of Src. Symlinks says what a symbolic link inside Src
// does: "refuse" (the default) fails the build naming it, "follow" carries
// what it points to (a file, or a folder walked in turn; a loop fails), and
// "skip" leaves it out. A kit never contains a link.
type FileSource struct {
	Src      string   `json:"src"`
	Dest     string   `json:"dest,omitempty"`
	Symlinks Symlinks `json:"symlinks,omitempty"`
}

// Symlinks is what a file source does with the symbolic links it holds.
type Symlinks string

// The choices of FileSource.Symlinks; "" is SymlinksRefuse.
const (
	SymlinksRefuse Symlinks = "refuse"
	SymlinksFollow Symlinks = "follow"
	SymlinksSkip   Symlinks = "skip"
)

// DebugSource is a source of debug files (docs/debug.md). With a Kind,
// every file is named by its GNU build id and stored as
// debug/.build-id/<aa>/<rest>.debug (and <aa>/<rest> for an executable),
// listed in debug/debug-manifest.json and the kit manifest's debug[].
// Without a Kind, Src is copied as a tree under debug/Dest, as a FileSource
// is, and indexed nowhere (the form of kits built before kinds existed).
type DebugSource struct {
	Src      string   `json:"src"`
	Dest     string   `json:"dest,omitempty"`
	Symlinks Symlinks `json:"symlinks,omitempty"`
	// Kind is DebugKindFile, DebugKindBinary, DebugKindBuildIDTree, or ""
	// for a plain tree copy.
	Kind DebugKind `json:"kind,omitempty"`
	// Component names what the files belong to (a service, a package); it
	// is recorded with each file.
	Component string `json:"component,omitempty"`
	// Executable also stores an unstripped binary (DebugKindBinary) as the
	// executable <aa>/<rest>.
	Executable bool `json:"executable,omitempty"`
	// Paths (DebugKindImage) are files of the image also kept without
	// debug information, as the executable <aa>/<rest>.
	Paths []string `json:"paths,omitempty"`
}

// DebugKind is the kind of a debug source.
type DebugKind string

// The kinds of debug source.
const (
	// DebugKindFile: Src is a separate debug file (objcopy
	// --only-keep-debug) or a folder of them.
	DebugKindFile DebugKind = "debug-file"
	// DebugKindBinary: Src is an unstripped binary, or a folder of them; it
	// carries its own debug information and is stored as the .debug file.
	DebugKindBinary DebugKind = "binary"
	// DebugKindBuildIDTree: Src is a .build-id tree (or the folder holding
	// one, as /usr/lib/debug): <aa>/<rest>.debug and <aa>/<rest> files,
	// each checked against its own build id.
	DebugKindBuildIDTree DebugKind = "build-id-tree"
	// DebugKindImage: Src is the ref of an image of the spec's images:;
	// the ELF files of its layers that carry debug information (and those
	// Paths lists) are stored, with the image's digest and their path in
	// it.
	DebugKindImage DebugKind = "image"
)

// FileSource is the plain tree copy a DebugSource without a Kind makes.
func (d DebugSource) FileSource() FileSource {
	return FileSource{Src: d.Src, Dest: d.Dest, Symlinks: d.Symlinks}
}

// MirrorSource is a feed mirror export to carry (docs/mirror.md): the
// export of Root that ExportID selects ("latest", the default, follows
// ROOT/latest or takes the newest export; "newest" the greatest export id;
// anything else names the export), its Domains (all when empty), checked
// and its signatures verified with Keys at build time, and packed at
// mirror/<kind>/<exportId>/mirror/….
type MirrorSource struct {
	Kind     string      `json:"kind"` // MirrorConcelier or MirrorExcititor
	Root     string      `json:"root"`
	ExportID string      `json:"exportId,omitempty"`
	Domains  []string    `json:"domains,omitempty"`
	Keys     []MirrorKey `json:"keys"`
}

// MirrorKey is a key file (JWK, JWKS or PEM public keys) a mirror source
// trusts. In kit.yaml it is a path, or {path, id} to name a PEM key.
type MirrorKey struct {
	Path string `json:"path"`
	ID   string `json:"id,omitempty"`
}

// UnmarshalJSON reads a path or a {path, id} object.
func (k *MirrorKey) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '"' {
		k.ID = ""
		return json.Unmarshal(t, &k.Path)
	}
	type plain MirrorKey
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode((*plain)(k))
}
