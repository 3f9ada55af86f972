// Package reponame maps the image references a kit carries
// (org.opencontainers.image.ref.name annotations) to the repository names
// and tags a registry serves them under, the same way for `offkit serve` and
// `offkit push`.
//
// The rules, in order:
//
//  1. The reference is parsed as a container image reference (Parse):
//     optional registry host, repository path, then ":tag" and/or
//     "@sha256:<hex>". A reference with no registry host is Docker Hub's
//     (docker.io), as container runtimes read it: "app:1.2" is
//     "library/app" tag "1.2".
//  2. The registry host is dropped ("registry.example/team/app:1.2" is
//     served as "team/app:1.2"), unless Mapping.KeepHost is set (then it is
//     served as "registry.example/team/app:1.2", ports dropped from the host's
//     name as ":" is not allowed in a repository name).
//  3. Mapping.StripPrefix ("stellaops/") is removed from the front of the
//     repository when present.
//  4. The result must be a valid distribution-spec repository name:
//     lowercase path components of [a-z0-9] joined by ".", "_", "__" or runs
//     of "-", separated by "/", at most MaxNameLength bytes.
//
// Cosign signature tags ("repo:sha256-<hex>.sig") map like any tag, and a
// referrer carried as "repo@sha256:<hex>" maps to its repository with no tag.
package reponame

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/offkit/offkit/internal/errdef"
)

// MaxNameLength bounds a repository name (the distribution spec suggests
// that a name of host and path stays under 255 characters).
const MaxNameLength = 255

// Name matches a distribution-spec repository name.
var Name = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

// Tag matches a distribution-spec tag.
var Tag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Mapping says how references become served names. The zero value drops
// the registry host and strips nothing.
type Mapping struct {
	// KeepHost serves names with their registry host.
	KeepHost bool `json:"keepHost,omitempty"`
	// StripPrefix removes a leading repository path, such as "stellaops/".
	StripPrefix string `json:"stripPrefix,omitempty"`
}

// Ref is a mapped reference. Tag or Digest (or both) is set.
type Ref struct {
	Repository string
	Tag        string
	Digest     string
}

// Map maps one reference.
func (m Mapping) Map(ref string) (Ref, error) {
	r, err := Parse(ref)
	if err != nil {
		return Ref{}, fmt.Errorf("image reference %w: %w", err, errdef.ErrInvalid)
	}
	if r.Tag == "" && r.Digest == "" {
		return Ref{}, fmt.Errorf("image reference %q: neither tag nor digest: %w", ref, errdef.ErrInvalid)
	}
	out := Ref{Repository: r.Path, Tag: r.Tag, Digest: r.Digest}
	if m.KeepHost {
		host, _, _ := strings.Cut(r.Host, ":")
		out.Repository = host + "/" + out.Repository
	}
	if p := strings.Trim(m.StripPrefix, "/"); p != "" {
		if s, ok := strings.CutPrefix(out.Repository, p+"/"); ok {
			out.Repository = s
		}
	}
	if len(out.Repository) > MaxNameLength || !Name.MatchString(out.Repository) {
		return Ref{}, fmt.Errorf("image reference %q: %q is not a valid repository name: %w", ref, out.Repository, errdef.ErrInvalid)
	}
	if r.Digest != "" && !ValidDigest(r.Digest) {
		return Ref{}, fmt.Errorf("image reference %q: %q is not a sha256 digest: %w", ref, r.Digest, errdef.ErrInvalid)
	}
	return out, nil
}

// ValidDigest reports whether d is "sha256:" and 64 lowercase hex digits,
// the only digests a site stores.
func ValidDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
