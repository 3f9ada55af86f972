package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	oraserr "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/ctxio"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/loopback"
	"github.com/offkit/offkit/internal/verifyread"
)

// OCIOptions configure a fetch from a registry.
type OCIOptions struct {
	// PlainHTTP talks http to any registry; a loopback registry (127.0.0.0/8,
	// ::1, localhost) is always spoken to in plain http.
	PlainHTTP bool
	// Credential returns the credential for a registry host; nil means
	// anonymous.
	Credential auth.CredentialFunc
	// HTTPClient sends the requests; nil means oras-go's retry client.
	HTTPClient *http.Client
}

// FromOCI writes to w the debug file of build id id from the debug store
// artifact at ref (HOST/REPO:TAG or HOST/REPO@DIGEST): the manifest (at
// most debugstore.MaxArtifactManifest bytes, of the artifact type), then the
// one layer whose build id annotation is id and whose title is
// <aa>/<rest>.debug, fetched by its digest and checked against it.
func FromOCI(ctx context.Context, ref, id string, o Options, oo OCIOptions, w io.Writer) (*Result, error) {
	if o.kind() != debugstore.KindDebuginfo {
		return nil, fmt.Errorf("oci://%s: the debug store artifact carries debug files only, no executables: %w", ref, errdef.ErrNotFound)
	}
	r, err := registry.ParseReference(ref)
	if err != nil || r.Reference == "" {
		return nil, fmt.Errorf("oci://%s: want oci://HOST/REPOSITORY:TAG: %w", ref, errdef.ErrInvalid)
	}
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, fmt.Errorf("oci://%s: %w: %w", ref, err, errdef.ErrInvalid)
	}
	hc := oo.HTTPClient
	if hc == nil {
		hc = retry.DefaultClient
	}
	repo.Client = &auth.Client{Client: hc, Cache: auth.NewCache(), Credential: oo.Credential, Header: http.Header{"User-Agent": {"offkit"}}}
	repo.PlainHTTP = oo.PlainHTTP || loopback.Host(r.Registry)
	repo.ManifestMediaTypes = []string{ocispec.MediaTypeImageManifest}
	// What oras-go reads of a response to digest it (a manifest served
	// without Docker-Content-Digest) or to parse an error.
	repo.MaxMetadataBytes = debugstore.MaxArtifactManifest
	raw, desc, err := fetchManifest(ctx, repo, ref, r.Reference)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("oci://%s: manifest %s: %v: %w", ref, desc.Digest, err, errdef.ErrInvalid)
	}
	if m.ArtifactType != debugstore.ArtifactType {
		return nil, fmt.Errorf("oci://%s: artifact type %q, not %s: %w", ref, m.ArtifactType, debugstore.ArtifactType, errdef.ErrInvalid)
	}
	var layer *ocispec.Descriptor
	for i, l := range m.Layers {
		if l.Annotations[debugstore.AnnotationBuildID] != id {
			continue
		}
		if t := l.Annotations[debugstore.AnnotationTitle]; t != debugstore.Title(id) {
			return nil, fmt.Errorf("oci://%s: layer %d: build id %s titled %q, not %s: %w", ref, i, id, t, debugstore.Title(id), errdef.ErrInvalid)
		}
		if err := l.Digest.Validate(); err != nil || l.Digest.Algorithm() != "sha256" || l.Size < 0 {
			return nil, fmt.Errorf("oci://%s: layer %d: digest %q, size %d: %w", ref, i, l.Digest, l.Size, errdef.ErrInvalid)
		}
		if l.Size > debugstore.MaxDebugFile {
			return nil, fmt.Errorf("oci://%s: manifest %s: layer %d (%s, build id %s) declares %d bytes, over the limit of %d for a debug file: %w",
				ref, desc.Digest, i, l.Digest, id, l.Size, int64(debugstore.MaxDebugFile), errdef.ErrInvalid)
		}
		layer = &m.Layers[i]
		break
	}
	if layer == nil {
		return nil, fmt.Errorf("oci://%s: no layer for build id %s among %d: %w", ref, id, len(m.Layers), errdef.ErrNotFound)
	}
	rc, err := repo.Blobs().Fetch(ctx, *layer)
	if err != nil {
		return nil, fmt.Errorf("oci://%s: fetching %s: %w", ref, layer.Digest, registryError(err))
	}
	defer rc.Close()
	win := debugstore.NewWindow(layer.Size)
	v := verifyread.New(rc, layer.Digest.String(), layer.Size, layer.Digest.String())
	if _, err := io.Copy(checked{win: win, w: w}, ctxio.Reader(ctx, v)); err != nil {
		return nil, fmt.Errorf("oci://%s: %w", ref, registryError(err))
	}
	if _, err := debugstore.CheckStoredName(debugstore.DebugPath(id), win, layer.Size); err != nil {
		return nil, fmt.Errorf("oci://%s: layer %s: %w", ref, layer.Digest, err)
	}
	return &Result{BuildID: id, Kind: string(o.kind()), Entry: debugstore.Title(id), Size: layer.Size,
		SHA256: layer.Digest.Encoded(), Digest: layer.Digest.String()}, nil
}

// fetchManifest gets the manifest of ref (reference: its tag or digest) in
// one GET: a size declared over debugstore.MaxArtifactManifest is refused
// before anything is read, and verifyread reads at most the declared
// bytes (and one more, to tell a longer body), into a buffer that grows
// with the bytes read, never sized from the declaration. The bytes must
// have the declared size and digest (errdef.ErrDigestMismatch).
func fetchManifest(ctx context.Context, repo *remote.Repository, ref, reference string) ([]byte, ocispec.Descriptor, error) {
	const limit = debugstore.MaxArtifactManifest
	desc, rc, err := repo.FetchReference(ctx, reference)
	if err != nil {
		return nil, desc, fmt.Errorf("oci://%s: fetching the manifest: %w", ref, registryError(err))
	}
	defer rc.Close()
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, desc, fmt.Errorf("oci://%s: a %s, not the debug store's image manifest: %w", ref, desc.MediaType, errdef.ErrInvalid)
	}
	if err := desc.Digest.Validate(); err != nil || desc.Digest.Algorithm() != "sha256" {
		return nil, desc, fmt.Errorf("oci://%s: manifest digest %q: not sha256: %w", ref, desc.Digest, errdef.ErrInvalid)
	}
	if desc.Size < 0 || desc.Size > limit {
		return nil, desc, fmt.Errorf("oci://%s: manifest %s declares %d bytes, over the limit of %d: %w", ref, desc.Digest, desc.Size, limit, errdef.ErrInvalid)
	}
	var buf bytes.Buffer
	v := verifyread.New(rc, "manifest "+desc.Digest.String(), desc.Size, desc.Digest.String())
	if _, err := io.Copy(&buf, ctxio.Reader(ctx, v)); err != nil {
		return nil, desc, fmt.Errorf("oci://%s: %w", ref, registryError(err))
	}
	return buf.Bytes(), desc, nil
}

// registryError says what kind of failure err is.
func registryError(err error) error {
	var resp *errcode.ErrorResponse
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, oraserr.ErrNotFound), errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", err, errdef.ErrNotFound)
	case errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Errorf("the registry speaks plain http (use --plain-http): %w: %w", err, errdef.ErrInvalid)
	case errors.Is(err, errdef.ErrInvalid), errors.Is(err, errdef.ErrDigestMismatch):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The body ended before the Content-Length the registry declared.
		return fmt.Errorf("short: %w: %w", err, errdef.ErrDigestMismatch)
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData):
		return fmt.Errorf("%w: %w", err, errdef.ErrDigestMismatch)
	}
	return err
}
