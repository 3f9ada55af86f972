// Package push copies the images of an installed site, or of a kit, into an
// existing registry (Harbor, Zot, distribution) with oras-go, for sites that
// run their own registry beside or instead of `offkit serve`.
//
// The rules:
//
//  1. Target. Options.To is HOST or HOST/NAMESPACE: a registry host
//     (with an optional port) and an optional repository path that every
//     pushed repository goes under. Anything else (a scheme, a tag, a
//     digest, upper case) is errdef.ErrInvalid.
//  2. Names. The source is an OCI image layout whose index describes each
//     root with an org.opencontainers.image.ref.name annotation. The
//     reference is mapped by reponame.Mapping exactly as `offkit serve`
//     maps it, and the target repository is NAMESPACE/ + the mapped
//     repository. A reference with a tag (cosign's sha256-<hex>.sig and
//     .att tags included) is pushed with that tag; one with only a digest
//     (an OCI referrer, an image pinned by digest) is pushed by digest. A
//     digest in the reference must be the descriptor's own.
//  3. Graphs. Each root is copied with its whole graph: an index with every
//     manifest it lists, a manifest with its config and layers, and a
//     referrer with its subject. Tagged images go first, then digest-only
//     roots, then cosign tags, each group in index order.
//  4. Skip. Before a node is uploaded the target is asked whether it has it
//     (HEAD); a manifest the target has is skipped with everything under
//     it, and a tag that already names the digest is left alone. A second
//     push of the same source therefore uploads nothing. Nothing is ever
//     deleted in the target (referrers tag indexes are not garbage
//     collected).
//  5. Concurrency. Images are pushed one after the other, so blobs shared
//     between images of a repository are uploaded once; the nodes of one
//     image are uploaded at most Options.Jobs at a time (DefaultJobs).
//  6. Retries. Every request goes through oras-go's retry client (up to 5
//     retries with exponential backoff from 250ms on 408, 429, 5xx, timeouts
//     and reset connections, honouring Retry-After). A blob upload whose body
//     cannot be rewound is retried as a whole, up to BlobAttempts attempts,
//     re-reading the blob from the source.
//  7. Access. Credentials come from Options.Credential (the command line
//     reads the docker config). The registry is pinged before anything else,
//     so that an unreachable registry or refused credentials fail early,
//     naming the registry.
//  8. Kits. From a kit file, the kit is verified in one streaming pass that
//     extracts its images/ layout into a temporary folder (removed
//     afterwards). Verification and upload overlap: nothing is uploaded
//     before the kit manifest's signature is checked; then each blob that
//     is not a manifest (configs, layers) is uploaded as soon as its own
//     bytes verified, into the repositories that images[] of the verified
//     manifest leads to through manifests that verified too. No manifest
//     and no tag is pushed before the whole kit verified (every byte, the
//     image layout, the image signatures): until then, what was uploaded
//     is blobs that no manifest in the target names. A kit that fails
//     verification leaves at most such blobs behind.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	oraserr "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
)

// DefaultJobs is the number of parallel uploads when Options.Jobs is 0
// (the same as docker, containerd and oras).
const DefaultJobs = 3

// MaxJobs bounds Options.Jobs.
const MaxJobs = 64

// BlobAttempts bounds the attempts at uploading one blob.
const BlobAttempts = 3

// blobRetryWait is the wait before the second attempt at a blob; it doubles
// for each further attempt.
const blobRetryWait = time.Second

// Options configure a push. To is required; the zero value of every other
// field means its documented default.
type Options struct {
	// To is HOST or HOST/NAMESPACE.
	To string
	// Mapping names target repositories as `offkit serve` names them.
	Mapping reponame.Mapping
	// PlainHTTP talks http instead of https (loopback registries).
	PlainHTTP bool
	// Jobs bounds the parallel uploads of one image; 0 means DefaultJobs.
	Jobs int
	// Credential returns the credential for a registry host; nil means
	// anonymous.
	Credential auth.CredentialFunc
	// HTTPClient sends the requests; nil means oras-go's retry client.
	HTTPClient *http.Client
	// Progress is called after each image is pushed.
	Progress func(Image)
	// TempDir holds a kit's extracted images while Kit runs; "" means
	// os.TempDir().
	TempDir string
}

// Image reports one pushed root.
type Image struct {
	// Source is the reference in the source's index.
	Source string `json:"source"`
	// Reference is where it was pushed: HOST/REPO:TAG or HOST/REPO@DIGEST.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Kind is "image" (tagged), "digest" (pushed by digest: a referrer or
	// a pinned image) or "cosign" (a cosign signature or attestation tag).
	Kind string `json:"kind"`
	// Nodes counts the manifests and blobs of the image's graph (a
	// referrer's subject included); Copied were uploaded, Skipped were in
	// the target already.
	Nodes   int   `json:"nodes"`
	Copied  int   `json:"copied"`
	Skipped int   `json:"skipped"`
	Bytes   int64 `json:"bytes"`
	// Tagged is set when the tag was created or moved.
	Tagged bool `json:"tagged,omitempty"`
}

// Result reports a push.
type Result struct {
	Registry  string  `json:"registry"`
	Namespace string  `json:"namespace,omitempty"`
	Images    []Image `json:"images"`
	Copied    int     `json:"copied"`
	Skipped   int     `json:"skipped"`
	Bytes     int64   `json:"bytes"`

	// Debug is the debug store artifact, pushed with a site's images.
	Debug *DebugResult `json:"debugStore,omitempty"`
}

// Target is a parsed Options.To.
type Target struct {
	Host      string
	Namespace string
}

// ParseTarget parses HOST or HOST/NAMESPACE.
func ParseTarget(to string) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("target %q: %s: %w", to, why, errdef.ErrInvalid)
	}
	if to == "" {
		return bad("empty, want HOST or HOST/NAMESPACE")
	}
	if strings.Contains(to, "://") {
		return bad("no scheme, please: HOST/NAMESPACE (use --plain-http for http)")
	}
	host, ns, _ := strings.Cut(strings.TrimSuffix(to, "/"), "/")
	if err := (registry.Reference{Registry: host}).ValidateRegistry(); err != nil {
		return bad(fmt.Sprintf("%q is not a registry host", host))
	}
	if ns != "" && (len(ns) > reponame.MaxNameLength || !reponame.Name.MatchString(ns)) {
		return bad(fmt.Sprintf("%q is not a valid repository path", ns))
	}
	return Target{Host: host, Namespace: ns}, nil
}

// repository returns the target repository of a mapped repository.
func (t Target) repository(mapped string) (string, error) {
	repo := mapped
	if t.Namespace != "" {
		repo = t.Namespace + "/" + mapped
	}
	if len(t.Host)+1+len(repo) > reponame.MaxNameLength {
		return "", fmt.Errorf("repository %s/%s: over %d bytes: %w", t.Host, repo, reponame.MaxNameLength, errdef.ErrInvalid)
	}
	return repo, nil
}

// root is one descriptor of the source index, mapped to its target.
type root struct {
	source string
	desc   ocispec.Descriptor
	repo   string
	tag    string
	kind   string
}

var cosignTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att|sbom)$`)

// plan maps the source index to the roots to push, in push order.
func plan(t Target, m reponame.Mapping, index []byte) ([]root, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, fmt.Errorf("image index: %w: %w", err, errdef.ErrInvalid)
	}
	seen := map[string]bool{}
	var roots []root
	for _, d := range idx.Manifests {
		ref := d.Annotations[ocispec.AnnotationRefName]
		if ref == "" {
			return nil, fmt.Errorf("image index: %s has no %s annotation: %w", d.Digest, ocispec.AnnotationRefName, errdef.ErrInvalid)
		}
		if !reponame.ValidDigest(d.Digest.String()) {
			return nil, fmt.Errorf("image %s: digest %q: %w", ref, d.Digest, errdef.ErrInvalid)
		}
		r, err := m.Map(ref)
		if err != nil {
			return nil, err
		}
		if r.Digest != "" && r.Digest != d.Digest.String() {
			return nil, fmt.Errorf("image %s: the index says %s: %w", ref, d.Digest, errdef.ErrInvalid)
		}
		repo, err := t.repository(r.Repository)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		key := repo + ":" + r.Tag + "@" + d.Digest.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		kind := "image"
		switch {
		case r.Tag == "":
			kind = "digest"
		case cosignTag.MatchString(r.Tag):
			kind = "cosign"
		}
		roots = append(roots, root{source: ref, desc: d, repo: repo, tag: r.Tag, kind: kind})
	}
	order := map[string]int{"image": 0, "digest": 1, "cosign": 2}
	slices.SortStableFunc(roots, func(a, b root) int { return order[a.kind] - order[b.kind] })
	return roots, nil
}

// pusher pushes into one registry.
type pusher struct {
	target Target
	opts   Options
	client remote.Client
	// uploaded holds the repository@digest of the blobs Kit uploaded
	// while the kit verified: the final push finds them in the target and
	// counts them as copied.
	uploaded map[string]bool
}

// newPusher checks the options and pings the registry.
func newPusher(ctx context.Context, t Target, opts Options) (*pusher, error) {
	if opts.Jobs < 0 || opts.Jobs > MaxJobs {
		return nil, fmt.Errorf("jobs %d: want 1 to %d: %w", opts.Jobs, MaxJobs, errdef.ErrInvalid)
	}
	if opts.Jobs == 0 {
		opts.Jobs = DefaultJobs
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = retry.DefaultClient
	}
	p := &pusher{target: t, opts: opts, client: &auth.Client{
		Client:     hc,
		Cache:      auth.NewCache(),
		Credential: opts.Credential,
		Header:     http.Header{"User-Agent": {"offkit"}},
	}}
	reg, err := remote.NewRegistry(t.Host)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w: %w", t.Host, err, errdef.ErrInvalid)
	}
	reg.Client, reg.PlainHTTP = p.client, opts.PlainHTTP
	if err := reg.Ping(ctx); err != nil {
		return nil, p.registryError(err)
	}
	return p, nil
}

// registryError names the registry and says what kind of failure err is.
func (p *pusher) registryError(err error) error {
	var resp *errcode.ErrorResponse
	var nerr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, auth.ErrBasicCredentialNotFound),
		errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("registry %s: access refused (credentials come from the docker config, see `docker login`): %w", p.target.Host, err)
	case !p.opts.PlainHTTP && errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Errorf("registry %s: speaks plain http (use --plain-http for a loopback registry): %w: %w", p.target.Host, errdef.ErrInvalid, err)
	case errors.As(err, &nerr):
		return fmt.Errorf("registry %s: unreachable: %w", p.target.Host, err)
	case errors.Is(err, oraserr.ErrNotFound):
		return fmt.Errorf("registry %s: no registry API at /v2/: %w", p.target.Host, err)
	}
	return fmt.Errorf("registry %s: %w", p.target.Host, err)
}

// remoteRepo returns a client of the target's repository name (a path
// below the host, namespace included), through p's authenticating client.
func (p *pusher) remoteRepo(name string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(p.target.Host + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("repository %s/%s: %w: %w", p.target.Host, name, err, errdef.ErrInvalid)
	}
	repo.Client, repo.PlainHTTP = p.client, p.opts.PlainHTTP
	// Pushing never deletes anything in the target.
	repo.SkipReferrersGC = true
	return repo, nil
}

func (p *pusher) push(ctx context.Context, src content.ReadOnlyStorage, roots []root) (*Result, error) {
	res := &Result{Registry: p.target.Host, Namespace: p.target.Namespace, Images: []Image{}}
	repos := map[string]*remote.Repository{}
	for _, r := range roots {
		repo := repos[r.repo]
		if repo == nil {
			var err error
			if repo, err = p.remoteRepo(r.repo); err != nil {
				return nil, err
			}
			repos[r.repo] = repo
		}
		im, err := p.pushRoot(ctx, src, repo, r)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, *im)
		res.Copied += im.Copied
		res.Skipped += im.Skipped
		res.Bytes += im.Bytes
		if p.opts.Progress != nil {
			p.opts.Progress(*im)
		}
	}
	return res, nil
}

// pushRoot copies one root's graph and tags it.
func (p *pusher) pushRoot(ctx context.Context, src content.ReadOnlyStorage, repo *remote.Repository, r root) (*Image, error) {
	im := &Image{Source: r.source, Digest: r.desc.Digest.String(), MediaType: r.desc.MediaType, Kind: r.kind}
	im.Reference = p.target.Host + "/" + r.repo + "@" + im.Digest
	if r.tag != "" {
		im.Reference = p.target.Host + "/" + r.repo + ":" + r.tag
	}
	fail := func(err error) (*Image, error) {
		var cerr *oras.CopyError
		if errors.As(err, &cerr) && cerr.Origin == oras.CopyErrorOriginSource {
			if errors.Is(err, oraserr.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%w: %w", err, errdef.ErrNotFound)
			}
			return nil, fmt.Errorf("image %s: reading the source: %w", r.source, err)
		}
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("image %s: pushing to %s: %w", r.source, im.Reference, p.registryError(err))
	}
	nodes, err := graphSize(ctx, src, r.desc)
	if err != nil {
		return fail(err)
	}
	im.Nodes = nodes

	var mu sync.Mutex
	copied := func(d ocispec.Descriptor) {
		mu.Lock()
		im.Copied++
		im.Bytes += d.Size
		mu.Unlock()
	}
	// tag pushes the root manifest with its tag (a PUT by tag creates the
	// manifest and the tag at once).
	tag := func(ctx context.Context) error {
		b, err := content.FetchAll(ctx, src, r.desc)
		if err != nil {
			return &oras.CopyError{Op: "Fetch", Origin: oras.CopyErrorOriginSource, Err: err}
		}
		if err := repo.PushReference(ctx, r.desc, bytes.NewReader(b), r.tag); err != nil {
			return err
		}
		im.Tagged = true
		return nil
	}
	isRoot := func(d ocispec.Descriptor) bool { return content.Equal(d, r.desc) }
	opts := oras.CopyGraphOptions{
		Concurrency: p.opts.Jobs,
		PreCopy: func(ctx context.Context, d ocispec.Descriptor) error {
			if r.tag == "" || !isRoot(d) {
				return nil
			}
			if err := tag(ctx); err != nil {
				return err
			}
			copied(d)
			return oras.SkipNode
		},
		PostCopy: func(ctx context.Context, d ocispec.Descriptor) error {
			copied(d)
			return nil
		},
		OnCopySkipped: func(ctx context.Context, d ocispec.Descriptor) error {
			if p.uploaded[r.repo+"@"+d.Digest.String()] {
				copied(d)
			}
			if r.tag == "" || !isRoot(d) {
				return nil
			}
			got, err := repo.Resolve(ctx, r.tag)
			if err == nil && got.Digest == d.Digest {
				return nil
			}
			if err != nil && !errors.Is(err, oraserr.ErrNotFound) {
				return err
			}
			return tag(ctx)
		},
	}
	if err := oras.CopyGraph(ctx, src, &retryBlobs{Repository: repo, src: src}, r.desc, opts); err != nil {
		return fail(err)
	}
	im.Skipped = max(im.Nodes-im.Copied, 0)
	return im, nil
}

// graphSize counts the distinct nodes of the graph under desc.
func graphSize(ctx context.Context, src content.ReadOnlyStorage, desc ocispec.Descriptor) (int, error) {
	seen := map[string]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if seen[d.Digest.String()] {
			return nil
		}
		seen[d.Digest.String()] = true
		succ, err := content.Successors(ctx, src, d)
		if err != nil {
			return &oras.CopyError{Op: "Successors", Origin: oras.CopyErrorOriginSource, Err: err}
		}
		for _, s := range succ {
			if err := walk(s); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk(desc)
	return len(seen), err
}

// retryBlobs retries a failed blob upload, re-reading the blob from src:
// the retry client cannot rewind a streamed request body.
type retryBlobs struct {
	*remote.Repository
	src content.ReadOnlyStorage
}

func (r *retryBlobs) Push(ctx context.Context, d ocispec.Descriptor, rd io.Reader) error {
	err := r.Repository.Push(ctx, d, rd)
	wait := blobRetryWait
	for attempt := 1; attempt < BlobAttempts && transient(err); attempt++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
		rc, ferr := r.src.Fetch(ctx, d)
		if ferr != nil {
			return err
		}
		err = r.Repository.Push(ctx, d, rc)
		rc.Close()
	}
	return err
}

// transient reports whether an upload that failed with err may succeed
// when tried again.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		return resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF)
}
