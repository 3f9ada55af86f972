package push

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/offkit/offkit/internal/ocidir"
	"github.com/offkit/offkit/manifest"
)

// maxEarlyManifest bounds the image manifests and indexes the early
// uploader reads to learn where blobs go; a larger one (which verify
// refuses anyway) only leaves its blobs to the final push.
const maxEarlyManifest = 4 << 20

// early uploads the blobs of a kit's images while the kit is still being
// verified (rule 8): only blobs (configs, layers: never a manifest or a
// tag), each once its bytes verified, and only into the repositories the
// verified kit manifest's images[] lead to through manifests that verified
// too. Nothing it uploads is announced: a registry serves a blob to no one
// until a manifest names it, and the manifests and tags are pushed by the
// final push, after the whole kit verified. Its failures are not errors:
// the final push uploads whatever is missing.
type early struct {
	p      *pusher
	dir    string // the layout's folder
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []upload
	closed   bool
	repos    map[string]map[string]bool // digest → target repositories
	children map[string][]ocispec.Descriptor
	blobs    map[string]int64 // verified blobs (not manifests) → size
	queued   map[string]bool  // repository@digest
	done     map[string]bool  // repository@digest uploaded here
	clients  map[string]*remote.Repository
}

type upload struct {
	repo string
	desc ocispec.Descriptor
}

func newEarly(ctx context.Context, p *pusher, dir string) *early {
	e := &early{
		p: p, dir: dir,
		repos: map[string]map[string]bool{}, children: map[string][]ocispec.Descriptor{},
		blobs: map[string]int64{}, queued: map[string]bool{}, done: map[string]bool{},
		clients: map[string]*remote.Repository{},
	}
	e.cond = sync.NewCond(&e.mu)
	e.ctx, e.cancel = context.WithCancel(ctx)
	for range p.opts.Jobs {
		e.wg.Add(1)
		go e.work()
	}
	return e
}

// roots starts from the images the verified manifest lists.
func (e *early) roots(m *manifest.Manifest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, im := range m.Images {
		r, err := e.p.opts.Mapping.Map(im.Reference)
		if err != nil {
			continue // the final push reports it
		}
		repo, err := e.p.target.repository(r.Repository)
		if err != nil {
			continue
		}
		e.assign(im.Digest, repo)
	}
}

// verified is called for each images/ entry once its bytes verified.
func (e *early) verified(en manifest.Entry) {
	hexd, ok := strings.CutPrefix(en.Path, manifest.ImageBlobDir)
	if !ok {
		return
	}
	d := "sha256:" + hexd
	if en.MediaType == "" {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.blobs[d] = en.Size
		for repo := range e.repos[d] {
			e.enqueue(repo, d)
		}
		return
	}
	if en.Size > maxEarlyManifest {
		return
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "blobs", "sha256", hexd))
	if err != nil {
		return
	}
	var doc struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return
	}
	kids := doc.Manifests
	if doc.Config != nil {
		kids = append(kids, *doc.Config)
	}
	kids = append(kids, doc.Layers...)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.children[d] = kids
	for repo := range e.repos[d] {
		for _, k := range kids {
			e.assign(k.Digest.String(), repo)
		}
	}
}

// assign records that digest d goes to repo, and so do its children.
func (e *early) assign(d, repo string) {
	if e.repos[d][repo] {
		return
	}
	if e.repos[d] == nil {
		e.repos[d] = map[string]bool{}
	}
	e.repos[d][repo] = true
	if _, ok := e.blobs[d]; ok {
		e.enqueue(repo, d)
	}
	for _, k := range e.children[d] {
		e.assign(k.Digest.String(), repo)
	}
}

func (e *early) enqueue(repo, d string) {
	key := repo + "@" + d
	if e.queued[key] || e.closed {
		return
	}
	e.queued[key] = true
	e.queue = append(e.queue, upload{repo: repo, desc: ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.Digest(d), Size: e.blobs[d]}})
	e.cond.Signal()
}

func (e *early) work() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.cond.Wait()
		}
		if len(e.queue) == 0 || e.ctx.Err() != nil {
			e.mu.Unlock()
			return
		}
		u := e.queue[0]
		e.queue = e.queue[1:]
		repo := e.client(u.repo)
		e.mu.Unlock()
		if repo != nil && e.push(repo, u.desc) {
			e.mu.Lock()
			e.done[u.repo+"@"+u.desc.Digest.String()] = true
			e.mu.Unlock()
		}
	}
}

// client returns the repository client of repo (e.mu held).
func (e *early) client(repo string) *remote.Repository {
	if r, ok := e.clients[repo]; ok {
		return r
	}
	r, _ := e.p.remoteRepo(repo) // nil when it fails: the final push reports it
	e.clients[repo] = r
	return r
}

// push uploads one verified blob unless the target has it; true when
// uploaded.
func (e *early) push(repo *remote.Repository, d ocispec.Descriptor) bool {
	if has, err := repo.Blobs().Exists(e.ctx, d); err != nil || has {
		return false
	}
	f, err := os.Open(filepath.Join(e.dir, "blobs", "sha256", d.Digest.Encoded()))
	if err != nil {
		return false
	}
	defer f.Close()
	return repo.Blobs().Push(e.ctx, d, f) == nil
}

// finish lets the queued uploads run (or, when abandon, drops them and
// cancels those running) and returns the repository@digest keys uploaded.
func (e *early) finish(abandon bool) map[string]bool {
	e.mu.Lock()
	e.closed = true
	if abandon {
		e.queue = nil
		e.cancel()
	}
	e.cond.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()
	e.cancel()
	return e.done
}

// streamSink is the verify.Sink of Kit: it writes the kit's images/
// entries as an OCI layout, tells the early uploader of each once it
// verified, and reads past every other entry.
type streamSink struct {
	w     *ocidir.Writer
	early *early
}
