// Package images collects the container images of a kit into one OCI image
// layout folder: the `images/` part of the kit format (docs/kit-format.md).
//
// A source (manifest.ImageSource) is one of:
//
//   - a registry reference (neither Layout nor Archive): pulled by Ref, a tag
//     or a digest; an image or an index;
//   - an OCI image layout folder (Layout): the manifest whose
//     org.opencontainers.image.ref.name annotation is LayoutRef, or the only
//     manifest of the layout that is not a cosign tag (below);
//   - a docker-archive tarball (Archive, `docker save` format): the image
//     tagged ArchiveTag, or the only image of the archive.
//
// Resolve fetches and checks what every source points at (manifests,
// indexes, image configs, signatures) and returns a Plan: every file of the
// OCI image layout the sources make, with its size and digest, before any
// layer is fetched. A packer streams the Plan's files one by one from their
// sources (File.Open); Plan.Write writes them into a folder, and Collect is
// Resolve then Write. The layout holds `oci-layout`, `index.json` and
// `blobs/sha256/<hex>`, and obeys these rules:
//
//   - Every manifest, config and layer reachable from each source is stored
//     once, whatever the number of images sharing it. Multi-arch indexes are
//     kept whole unless ImageSource.Platforms is set; then a new index with
//     only the children of those platforms (and the attestation manifests of
//     those children) is written, and its digest differs from the source's.
//     Foreign and non-distributable layers are not carried.
//   - Every byte is checked once, while it is read: a blob must have the
//     size and sha256 its descriptor declares (errdef.ErrDigestMismatch
//     otherwise). Manifests, indexes and image configs are read into memory
//     by Resolve and are limited to ocilayout.MaxManifestSize; the other blobs are
//     read from their sources, never held whole in memory, when File.Open
//     is called (Write streams them to a temporary file and renames it).
//   - index.json lists one descriptor per source, sorted by Ref and annotated
//     with org.opencontainers.image.ref.name = Ref as written, followed by
//     the signature, attestation and referrer manifests carried, sorted by
//     their ref.name: `<repository>:sha256-<hex>.sig` and `.att` for cosign
//     tags, `<repository>@sha256:<hex>` for OCI referrers, <repository>
//     being the Ref as written less its tag and digest
//     (ocilayout.Repository). The same sources give the same bytes, whatever
//     their order and the timing of the fetches.
//   - Plan.Files records the media type of every manifest and index blob
//     (File.MediaType), which the kit manifest carries, so that a site knows
//     which blobs to parse before index.json streams.
//   - The cosign tags `sha256-<hex>.sig` and `sha256-<hex>.att` of the image
//     and of each child image of an index are carried when the source has
//     them: for a registry source, tags of its repository; for a layout
//     source, manifests whose ref.name is the tag or ends with ":" + tag.
//     The OCI referrers of a registry image are carried too (referrers API,
//     or its fallback tag). Their absence is not an error.
//
// A source with Verify (kit.yaml `verify: {key: cosign.pub}`) must be signed
// the way `cosign sign --key` signs: the signature manifest tagged
// `sha256-<hex>.sig`, hex being the source's digest, has a layer of media
// type sign.SimpleSigningMediaType whose bytes (at most
// sign.MaxPayloadSize) are a payload of type "cosign container image
// signature" naming that digest, and whose sign.SignatureAnnotation is the
// key's signature over those bytes (see sign.VerifyImage). This is checked
// while the source is resolved, before anything is written; no such layer
// is errdef.ErrSignature naming the image and the key. The first valid layer
// is recorded in manifest.Image.SignedBy, and the key's PKIX DER is written
// as the blob `blobs/sha256/<hex of the key id>` (the key id is the SHA-256
// of the DER), a blob that index.json does not reference: the kit then
// carries the signature manifest, the payload and the key, all a site needs
// to check the signature again. A docker archive carries no signature, and
// Platforms that drop children make an index nobody signed: both are
// ErrInvalid with Verify.
//
// Errors wrap the sentinels of internal/errdef: a Ref, platform or archive
// tag that does not parse, two sources with the same Ref, or an ambiguous
// layout or archive: ErrInvalid; a missing image, tag, platform, file or
// blob: ErrNotFound; bytes that do not match their digest: ErrDigestMismatch;
// no valid signature by a Verify key: ErrSignature.
package images

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
)

// DefaultJobs is the number of parallel fetches when Options.Jobs is 0.
const DefaultJobs = 4

// userAgent is the User-Agent of every registry request.
const userAgent = "offkit"

// Options tune Resolve and Collect. The zero value pulls over https with
// the docker config credentials, four fetches at a time, and logs nothing.
type Options struct {
	// BaseDir is the folder relative Layout and Archive paths are resolved
	// against (the kit.yaml folder).
	BaseDir string
	// PlainHTTP pulls every registry source over http (ImageSource.PlainHTTP
	// does it for one source).
	PlainHTTP bool
	// Keychain gives registry credentials; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
	// Jobs is the number of parallel fetches; 0 means DefaultJobs.
	Jobs int
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Collect writes the images of srcs into the OCI image layout folder dir,
// creating it, and returns one manifest.Image per source, in the order of
// srcs. dir should be new or empty: blobs already there are overwritten,
// index.json is replaced. It is Resolve, then Plan.Write.
func Collect(ctx context.Context, srcs []manifest.ImageSource, dir string, opts Options) ([]manifest.Image, error) {
	p, err := Resolve(ctx, srcs, opts)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := p.Write(ctx, dir); err != nil {
		return nil, err
	}
	return p.Images, nil
}

// Resolve fetches and checks the manifests, indexes and image configs of
// srcs (and their signatures when Verify asks), and returns the plan of
// the layout they make: every file, with its size and digest, before any
// layer is fetched. The caller must Close the plan.
func Resolve(ctx context.Context, srcs []manifest.ImageSource, opts Options) (*Plan, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	seen := make(map[string]int, len(srcs))
	for i, s := range srcs {
		if j, ok := seen[s.Ref]; ok {
			return nil, fmt.Errorf("images[%d] %q: same ref as images[%d]: %w", i, s.Ref, j, errdef.ErrInvalid)
		}
		seen[s.Ref] = i
	}
	puller, err := remote.NewPuller(remote.WithAuthFromKeychain(opts.Keychain), remote.WithUserAgent(userAgent))
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}

	// Resolve every source: fetch and check its manifests, list its blobs.
	plans := make([]*sourcePlan, len(srcs))
	p := &Plan{sources: plans, jobs: opts.Jobs, log: opts.Log}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Jobs)
	for i, s := range srcs {
		g.Go(func() error {
			sp, err := resolve(gctx, s, puller, opts)
			if err != nil {
				return err
			}
			plans[i] = sp
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.list(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// resolve fetches the manifests of one source and plans its blobs.
func resolve(ctx context.Context, s manifest.ImageSource, puller *remote.Puller, opts Options) (_ *sourcePlan, err error) {
	var nopts []name.Option
	if opts.PlainHTTP || s.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(s.Ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("image ref %q: %w: %w", s.Ref, err, errdef.ErrInvalid)
	}
	wanted, err := parsePlatforms(s.Ref, s.Platforms)
	if err != nil {
		return nil, err
	}
	var key *sign.PublicKey
	if s.Verify != nil {
		if s.Archive != "" {
			return nil, fmt.Errorf("image %q: verify: a docker archive carries no cosign signature; use a registry or an OCI layout source: %w", s.Ref, errdef.ErrInvalid)
		}
		if key, err = loadKey(s.Ref, resolvePath(opts.BaseDir, s.Verify.Key)); err != nil {
			return nil, err
		}
	}

	var o origin
	var root rootManifest
	switch {
	case s.Layout != "" && s.Archive != "":
		return nil, fmt.Errorf("image %q: both layout and archive set: %w", s.Ref, errdef.ErrInvalid)
	case s.Layout != "":
		lo, r, err := openLayout(resolvePath(opts.BaseDir, s.Layout), s)
		if err != nil {
			return nil, err
		}
		o, root = lo, r
	case s.Archive != "":
		ao, r, err := openArchive(resolvePath(opts.BaseDir, s.Archive), s)
		if err != nil {
			return nil, err
		}
		o, root = ao, r
	default:
		ro, r, err := openRegistry(ctx, puller, opts.Keychain, ref, s.Ref)
		if err != nil {
			return nil, err
		}
		o, root = ro, r
	}

	p := &sourcePlan{ref: s.Ref, origin: o}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if dr, ok := ref.(name.Digest); ok && dr.DigestStr() != root.desc.Digest.String() {
		return nil, fmt.Errorf("image %q: source has digest %s: %w", s.Ref, root.desc.Digest, errdef.ErrDigestMismatch)
	}
	stored, err := p.addRoot(ctx, root, wanted)
	if err != nil {
		return nil, err
	}
	if key != nil && stored.desc.Digest != root.desc.Digest {
		return nil, fmt.Errorf("image %q: verify: platforms makes a new index %s, which no one signed (the source is %s); drop platforms to keep the signed index: %w",
			s.Ref, stored.desc.Digest, root.desc.Digest, errdef.ErrInvalid)
	}
	p.root = entry{refName: s.Ref, desc: stored.desc}
	p.image = manifest.Image{
		Reference: s.Ref,
		Digest:    stored.desc.Digest.String(),
		MediaType: string(stored.desc.MediaType),
		Platforms: stored.platforms,
	}
	if t, ok := o.(tagger); ok {
		if err := p.addTags(ctx, t, ocilayout.Repository(s.Ref), root.desc, stored.children); err != nil {
			return nil, err
		}
	}
	if ro, ok := o.(*registryOrigin); ok {
		if err := p.addReferrers(ctx, ro, root.desc); err != nil {
			return nil, err
		}
	}
	for _, e := range p.extras {
		if strings.HasSuffix(e.refName, ".sig") {
			p.image.Signatures = append(p.image.Signatures, e.desc.Digest.String())
		}
	}
	slices.Sort(p.image.Signatures)
	p.image.Signatures = slices.Compact(p.image.Signatures)
	if key != nil {
		sb, err := p.checkSignature(ctx, key, s.Verify.Key, root.desc.Digest)
		if err != nil {
			return nil, err
		}
		p.image.SignedBy = []manifest.ImageSignature{sb}
		opts.Log.Info("image signature verified", "ref", s.Ref, "digest", p.image.Digest, "key", key.KeyID())
	}
	opts.Log.Info("image resolved", "ref", s.Ref, "digest", p.image.Digest,
		"platforms", strings.Join(p.image.Platforms, ","), "blobs", len(p.blobs), "signatures", len(p.image.Signatures))
	return p, nil
}

// close releases the origin of the source (an open layout folder).
func (p *sourcePlan) close() {
	if c, ok := p.origin.(io.Closer); ok {
		c.Close()
	}
}

func resolvePath(base, p string) string {
	if filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}
