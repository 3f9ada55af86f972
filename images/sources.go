package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/ocilayout"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
)

// registryOrigin pulls from one repository of a registry. Manifests come
// through the go-containerregistry puller; blobs through a client of their
// own, authorized for the repository on first use, so that their bytes are
// hashed once, by the reader File.Open returns (the puller's layers check
// digests themselves).
type registryOrigin struct {
	puller   *remote.Puller
	keychain authn.Keychain
	repo     name.Repository
	ref      string

	mu     sync.Mutex
	client *http.Client
}

func openRegistry(ctx context.Context, puller *remote.Puller, keychain authn.Keychain, ref name.Reference, raw string) (*registryOrigin, rootManifest, error) {
	d, err := puller.Get(ctx, ref)
	if err != nil {
		return nil, rootManifest{}, registryError(raw, "", err)
	}
	if len(d.Manifest) > ocilayout.MaxManifestSize {
		return nil, rootManifest{}, fmt.Errorf("image %q: manifest of %d bytes, over the %d limit: %w", raw, len(d.Manifest), ocilayout.MaxManifestSize, errdef.ErrInvalid)
	}
	o := &registryOrigin{puller: puller, keychain: keychain, repo: ref.Context(), ref: raw}
	return o, rootManifest{desc: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, data: d.Manifest}, nil
}

func (o *registryOrigin) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	r, err := o.puller.Get(ctx, o.repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, registryError(o.ref, d.Digest.String(), err)
	}
	return r.Manifest, nil
}

// blob GETs the blob d, as go-containerregistry's puller would (same
// transport, retries and credentials), without checking it.
func (o *registryOrigin) blob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	c, err := o.blobClient(ctx)
	if err != nil {
		return nil, registryError(o.ref, d.Digest.String(), err)
	}
	u := url.URL{Scheme: o.repo.Scheme(), Host: o.repo.RegistryStr(), Path: "/v2/" + o.repo.RepositoryStr() + "/blobs/" + d.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, registryError(o.ref, d.Digest.String(), err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, registryError(o.ref, d.Digest.String(), err)
	}
	return resp.Body, nil
}

func (o *registryOrigin) blobClient(ctx context.Context) (*http.Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.client != nil {
		return o.client, nil
	}
	auth, err := authn.Resolve(ctx, o.keychain, o.repo)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = transport.NewRetry(remote.DefaultTransport)
	rt = transport.NewUserAgent(rt, userAgent)
	rt, err = transport.NewWithContext(ctx, o.repo.Registry, auth, rt, []string{o.repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	o.client = &http.Client{Transport: rt}
	return o.client, nil
}

// tagger is an origin that can look up a tag of the image's repository:
// cosign's sha256-<hex>.sig and .att.
type tagger interface {
	// tag returns the manifest the tag names; found is false when the
	// source has no such tag.
	tag(ctx context.Context, tag string) (m rootManifest, found bool, err error)
}

func (o *registryOrigin) tag(ctx context.Context, tag string) (rootManifest, bool, error) {
	d, err := o.puller.Get(ctx, o.repo.Tag(tag))
	if isNotFound(err) {
		return rootManifest{}, false, nil
	}
	if err != nil {
		return rootManifest{}, false, registryError(o.ref, tag, err)
	}
	if err := checkDigest(d.Digest); err != nil {
		return rootManifest{}, false, fmt.Errorf("image %q: tag %s: %w", o.ref, tag, err)
	}
	return rootManifest{desc: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, data: d.Manifest}, true, nil
}

// addTags adds the cosign signature and attestation tags of the source
// digest src and of the child images of an index, when the source has them,
// with index.json names repo:tag. The signature manifest of src itself is
// kept in p.rootSig for verification.
func (p *sourcePlan) addTags(ctx context.Context, o tagger, repo string, src v1.Descriptor, children []v1.Hash) error {
	for _, h := range append([]v1.Hash{src.Digest}, children...) {
		for _, suffix := range []string{".sig", ".att"} {
			tag := h.Algorithm + "-" + h.Hex + suffix
			m, found, err := o.tag(ctx, tag)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if err := p.walk(ctx, m.desc, m.data, 1); err != nil {
				return err
			}
			p.extras = append(p.extras, entry{refName: repo + ":" + tag, desc: m.desc})
			if h == src.Digest && suffix == ".sig" {
				p.rootSig = &m
			}
		}
	}
	return nil
}

// addReferrers adds the OCI referrers of the source digest src (referrers
// API, or its fallback tag).
func (p *sourcePlan) addReferrers(ctx context.Context, o *registryOrigin, src v1.Descriptor) error {
	repo := ocilayout.Repository(o.ref)
	idx, err := remote.Referrers(o.repo.Digest(src.Digest.String()), remote.Reuse(o.puller), remote.WithContext(ctx))
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return registryError(o.ref, "referrers of "+src.Digest.String(), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("image %q: referrers of %s: %w: %w", o.ref, src.Digest, err, errdef.ErrInvalid)
	}
	for _, r := range im.Manifests {
		if err := checkDigest(r.Digest); err != nil {
			return fmt.Errorf("image %q: referrers of %s: %w", o.ref, src.Digest, err)
		}
		desc := v1.Descriptor{MediaType: r.MediaType, Size: r.Size, Digest: r.Digest}
		if err := p.walk(ctx, desc, nil, 1); err != nil {
			return err
		}
		p.extras = append(p.extras, entry{refName: repo + "@" + r.Digest.String(), desc: desc})
	}
	return nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, e := range terr.Errors {
		switch e.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return true
		}
	}
	return false
}

func registryError(ref, what string, err error) error {
	at := fmt.Sprintf("image %q", ref)
	if what != "" {
		at += " " + what
	}
	if isNotFound(err) {
		return fmt.Errorf("%s: %w: %w", at, err, errdef.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", at, err)
}

// layoutOrigin reads an OCI image layout folder.
type layoutOrigin struct {
	root *os.Root
	path string
	ref  string
	idx  *v1.IndexManifest
}

func openLayout(path string, s manifest.ImageSource) (*layoutOrigin, rootManifest, error) {
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, rootManifest{}, fileError(s.Ref, "layout", path, err)
	}
	o := &layoutOrigin{root: root, path: path, ref: s.Ref}
	r, err := o.pick(s)
	if err != nil {
		root.Close()
		return nil, rootManifest{}, err
	}
	return o, r, nil
}

func (o *layoutOrigin) Close() error { return o.root.Close() }

func (o *layoutOrigin) pick(s manifest.ImageSource) (rootManifest, error) {
	f, _, err := plainfile.OpenRegularIn(o.root, "index.json")
	if err != nil {
		return rootManifest{}, fileError(s.Ref, "layout", o.path+"/index.json", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, ocilayout.MaxManifestSize+1))
	if err != nil {
		return rootManifest{}, fmt.Errorf("image %q: layout %s: %w", s.Ref, o.path, err)
	}
	if len(b) > ocilayout.MaxManifestSize {
		return rootManifest{}, fmt.Errorf("image %q: layout %s: index.json over %d bytes: %w", s.Ref, o.path, ocilayout.MaxManifestSize, errdef.ErrInvalid)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return rootManifest{}, fmt.Errorf("image %q: layout %s: index.json: %w: %w", s.Ref, o.path, err, errdef.ErrInvalid)
	}
	o.idx = &idx
	// Cosign's signature and attestation manifests are not candidates.
	var images []v1.Descriptor
	for _, d := range idx.Manifests {
		if !isCosignTag(d.Annotations[ocispec.AnnotationRefName]) {
			images = append(images, d)
		}
	}
	var picked []v1.Descriptor
	switch {
	case s.LayoutRef != "":
		for _, d := range idx.Manifests {
			if d.Annotations[ocispec.AnnotationRefName] == s.LayoutRef {
				picked = append(picked, d)
			}
		}
		if len(picked) == 0 {
			return rootManifest{}, fmt.Errorf("image %q: layout %s: no manifest named %q: %w", s.Ref, o.path, s.LayoutRef, errdef.ErrNotFound)
		}
	case len(images) == 1:
		picked = images
	default:
		for _, d := range idx.Manifests {
			if d.Annotations[ocispec.AnnotationRefName] == s.Ref {
				picked = append(picked, d)
			}
		}
		if len(picked) == 0 {
			return rootManifest{}, fmt.Errorf("image %q: layout %s: %d manifests, set layoutRef: %w", s.Ref, o.path, len(idx.Manifests), errdef.ErrInvalid)
		}
	}
	if len(picked) > 1 {
		return rootManifest{}, fmt.Errorf("image %q: layout %s: %d manifests with the same name: %w", s.Ref, o.path, len(picked), errdef.ErrInvalid)
	}
	d := v1.Descriptor{MediaType: picked[0].MediaType, Size: picked[0].Size, Digest: picked[0].Digest}
	if err := checkDigest(d.Digest); err != nil {
		return rootManifest{}, fmt.Errorf("image %q: layout %s: %w", s.Ref, o.path, err)
	}
	rc, err := o.blob(context.Background(), d)
	if err != nil {
		return rootManifest{}, err
	}
	defer rc.Close()
	data, err := readSmall(s.Ref, d, rc)
	if err != nil {
		return rootManifest{}, err
	}
	return rootManifest{desc: d, data: data}, nil
}

// tag finds the manifest named tag in the layout: its
// org.opencontainers.image.ref.name is the tag alone or ends with ":" + tag
// (as in a kit's own layout, "<repository>:sha256-<hex>.sig").
func (o *layoutOrigin) tag(ctx context.Context, tag string) (rootManifest, bool, error) {
	var d *v1.Descriptor
	for i, m := range o.idx.Manifests {
		n := m.Annotations[ocispec.AnnotationRefName]
		if n != tag && !strings.HasSuffix(n, ":"+tag) {
			continue
		}
		if d != nil && d.Digest != m.Digest {
			return rootManifest{}, false, fmt.Errorf("image %q: layout %s: two manifests named %s: %w", o.ref, o.path, tag, errdef.ErrInvalid)
		}
		d = &o.idx.Manifests[i]
	}
	if d == nil {
		return rootManifest{}, false, nil
	}
	desc := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	rc, err := o.blob(ctx, desc)
	if err != nil {
		return rootManifest{}, false, err
	}
	defer rc.Close()
	data, err := readSmall(o.ref, desc, rc)
	if err != nil {
		return rootManifest{}, false, err
	}
	return rootManifest{desc: desc, data: data}, true, nil
}

// isCosignTag reports whether a ref.name is a cosign tag,
// [<repository>:]sha256-<hex>.sig or .att.
func isCosignTag(refName string) bool {
	t := refName[strings.LastIndex(refName, ":")+1:]
	h, ok := strings.CutPrefix(t, "sha256-")
	if !ok {
		return false
	}
	h, ok = strings.CutSuffix(h, ".sig")
	if !ok {
		h, ok = strings.CutSuffix(h, ".att")
	}
	return ok && checkDigest(v1.Hash{Algorithm: "sha256", Hex: h}) == nil
}

func (o *layoutOrigin) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	rc, err := o.blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, ocilayout.MaxManifestSize+1))
}

func (o *layoutOrigin) blob(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	if err := checkDigest(d.Digest); err != nil {
		return nil, fmt.Errorf("image %q: %w", o.ref, err)
	}
	p := "blobs/" + d.Digest.Algorithm + "/" + d.Digest.Hex
	// A named pipe in the layout is refused, not waited on.
	f, _, err := plainfile.OpenRegularIn(o.root, p)
	if err != nil {
		return nil, fileError(o.ref, "layout", o.path+"/"+p, err)
	}
	return f, nil
}

// archiveOrigin reads a docker-archive tarball.
type archiveOrigin struct {
	img     v1.Image
	mdigest v1.Hash
	raw     []byte
	config  v1.Hash
	cfg     []byte
	path    string
	ref     string
}

func openArchive(path string, s manifest.ImageSource) (*archiveOrigin, rootManifest, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, rootManifest{}, fileError(s.Ref, "archive", path, err)
	}
	opener := func() (io.ReadCloser, error) {
		// A named pipe is refused, not waited on.
		f, _, err := plainfile.OpenRegular(path)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	mf, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, rootManifest{}, fmt.Errorf("image %q: archive %s: %w: %w", s.Ref, path, err, errdef.ErrInvalid)
	}
	var tag *name.Tag
	if s.ArchiveTag != "" {
		t, err := name.NewTag(s.ArchiveTag)
		if err != nil {
			return nil, rootManifest{}, fmt.Errorf("image %q: archive tag %q: %w: %w", s.Ref, s.ArchiveTag, err, errdef.ErrInvalid)
		}
		found := false
		for _, d := range mf {
			for _, rt := range d.RepoTags {
				if have, err := name.NewTag(rt); err == nil && have.Name() == t.Name() {
					found = true
				}
			}
		}
		if !found {
			return nil, rootManifest{}, fmt.Errorf("image %q: archive %s: no image tagged %q: %w", s.Ref, path, s.ArchiveTag, errdef.ErrNotFound)
		}
		tag = &t
	} else if len(mf) != 1 {
		return nil, rootManifest{}, fmt.Errorf("image %q: archive %s: %d images, set archiveTag: %w", s.Ref, path, len(mf), errdef.ErrInvalid)
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, rootManifest{}, fmt.Errorf("image %q: archive %s: %w: %w", s.Ref, path, err, errdef.ErrInvalid)
	}
	o := &archiveOrigin{img: img, path: path, ref: s.Ref}
	var d v1.Descriptor
	if o.raw, err = img.RawManifest(); err == nil {
		if d.MediaType, err = img.MediaType(); err == nil {
			if o.cfg, err = img.RawConfigFile(); err == nil {
				o.config, err = img.ConfigName()
			}
		}
	}
	if err != nil {
		return nil, rootManifest{}, fmt.Errorf("image %q: archive %s: %w: %w", s.Ref, path, err, errdef.ErrInvalid)
	}
	if d.Digest, d.Size, err = v1.SHA256(bytes.NewReader(o.raw)); err != nil {
		return nil, rootManifest{}, err
	}
	o.mdigest = d.Digest
	return o, rootManifest{desc: d, data: o.raw}, nil
}

func (o *archiveOrigin) manifest(_ context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Digest != o.mdigest {
		return nil, fmt.Errorf("image %q: archive %s: manifest %s: %w", o.ref, o.path, d.Digest, errdef.ErrNotFound)
	}
	return o.raw, nil
}

func (o *archiveOrigin) blob(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	if d.Digest == o.config {
		return io.NopCloser(bytes.NewReader(o.cfg)), nil
	}
	l, err := o.img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %q: archive %s: layer %s: %w: %w", o.ref, o.path, d.Digest, err, errdef.ErrNotFound)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("image %q: archive %s: layer %s: %w", o.ref, o.path, d.Digest, err)
	}
	return rc, nil
}

func fileError(ref, what, path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %q: %s %s: %w", ref, what, path, errdef.ErrNotFound)
	}
	return fmt.Errorf("image %q: %s %s: %w", ref, what, path, err)
}
