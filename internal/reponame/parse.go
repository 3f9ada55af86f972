package reponame

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultHost is the registry of a reference that names none (Docker Hub).
const DefaultHost = "docker.io"

// Reference is a parsed image reference.
type Reference struct {
	Host   string // registry host and optional port; DefaultHost if none was named
	Path   string // repository path, "library/NAME" for a one-element Docker Hub name
	Tag    string // "" if none
	Digest string // "" if none; ALGORITHM:HEX, not checked further
}

var (
	// domain is a host name or IPv4 address, or a bracketed IPv6 address,
	// with an optional port.
	domain = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	// component is one element of a repository path.
	component = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// digest is ALGORITHM:ENCODED as the OCI image spec defines it.
	digest = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

// Parse parses an image reference as container runtimes do (the Docker
// reference grammar, [HOST[:PORT]/]PATH[:TAG][@DIGEST]):
//
//   - The first path element is a registry host if it contains "." or ":",
//     is "localhost", or has an uppercase letter; otherwise the host is
//     DefaultHost. "index.docker.io" is DefaultHost too.
//   - On DefaultHost, a one-element path is in "library/".
//   - Path elements are lowercase: [a-z0-9] runs joined by ".", "_", "__" or
//     runs of "-".
//   - A tag matches Tag; a digest is ALGORITHM:ENCODED (ValidDigest says
//     whether it is one a site stores).
func Parse(ref string) (Reference, error) {
	var r Reference
	rest := ref
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest, r.Digest = rest[:i], rest[i+1:]
		if !digest.MatchString(r.Digest) {
			return Reference{}, fmt.Errorf("%q: %q is not a digest", ref, r.Digest)
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, r.Tag = rest[:i], rest[i+1:]
		if !Tag.MatchString(r.Tag) {
			return Reference{}, fmt.Errorf("%q: %q is not a valid tag", ref, r.Tag)
		}
	}
	r.Host, r.Path = DefaultHost, rest
	if first, path, ok := strings.Cut(rest, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		if !domain.MatchString(first) {
			return Reference{}, fmt.Errorf("%q: %q is not a registry host", ref, first)
		}
		r.Host, r.Path = first, path
	}
	if r.Host == "index.docker.io" {
		r.Host = DefaultHost
	}
	if r.Path == "" {
		return Reference{}, fmt.Errorf("%q: no repository", ref)
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !component.MatchString(c) {
			return Reference{}, fmt.Errorf("%q: %q is not a valid repository path element (lowercase letters and digits joined by '.', '_', '__' or '-')", ref, c)
		}
	}
	if r.Host == DefaultHost && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	if len(r.Path) > MaxNameLength {
		return Reference{}, fmt.Errorf("%q: repository over %d bytes", ref, MaxNameLength)
	}
	return r, nil
}
