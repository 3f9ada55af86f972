// Package registry serves the images of an installed site over the pull side
// of the OCI distribution spec v1.1, read-only, straight from the site's
// store: nothing is copied at start-up.
//
// # Names
//
// Each image is served under the repository and tag its kit reference maps
// to (internal/reponame): a kit image "registry.example/team/app:1.2" is
// "team/app:1.2" by default. Cosign signature tags (sha256-<hex>.sig and
// .att) are served as the tags they are; OCI referrers are served through
// the referrers API of their subject.
//
// # Generations
//
// Every request resolves the generation being served once (Store.Generation)
// and answers from that generation's snapshot, built on first use: its
// repositories, tags, manifests, blobs and referrers. A request therefore
// sees the old generation or the new one, never a mix, and a download in
// flight during a switch finishes from the file it opened (the store is
// append-only).
//
// # One kit cannot break or take over another
//
// A snapshot loads the images of the generation kit by kit: the descriptors
// of the generation's image index are grouped by the kit that carries them
// (KitAnnotation), and each kit is loaded on its own. Install refuses a kit
// whose images could not be loaded; the registry does not rely on it. If a
// kit's images still cannot all be loaded (a manifest or blob missing from
// the store or of the wrong size, a digest that is not sha256 and 64
// lowercase hex digits, indexes nested deeper than MaxDepth, a manifest over
// ocilayout.MaxManifestSize, a media type that is not an image manifest or index or
// that its content contradicts, a reference that does not map, images that
// reach more than MaxKitReach manifests and blobs), the kit is
// isolated: none of its images is served (its names answer 404 NAME_UNKNOWN
// or MANIFEST_UNKNOWN, as if it carried none, until a generation without
// the fault is served), every other kit's images serve as they would
// without it, and Ready fails naming the kit and the reason. A bad digest is
// refused before the store is asked for it. Only a failure to read the store
// itself (not a fault of any kit's content) makes every image 503.
//
// Kits are considered in the order they became active (installedAt in the
// generation's state, when the Store implements Installed; then by kit
// name). A kit only adds to what the kits before it serve: when a later kit
// claims a repository:tag that an earlier kit serves with another digest
// (two references can meet once a mapping such as StripPrefix applies,
// which install cannot foresee), the earlier kit keeps the tag, the later
// claim is withheld (logged, and Ready fails naming both kits and the tag)
// and the later kit's other images serve. A repository, manifest or blob
// that two kits both carry is served once, as the first kit carries it.
//
// A Registry is a prometheus.Collector of offkit_registry_kits_isolated,
// offkit_registry_kit_isolated{kit} and offkit_registry_tags_withheld{kit}.
//
// # Endpoints
//
//	GET  /v2/                                     200 {}
//	GET  /v2/_catalog?n=&last=                    repositories, paginated (Link)
//	GET|HEAD /v2/<name>/manifests/<tag|digest>    Content-Type, Docker-Content-Digest, Content-Length, ETag
//	GET|HEAD /v2/<name>/blobs/<digest>            Range, ETag, If-None-Match
//	GET  /v2/<name>/tags/list?n=&last=            tags, paginated (Link)
//	GET  /v2/<name>/referrers/<digest>?artifactType=   OCI index of referrers
//
// Every other method is 405 UNSUPPORTED. Errors carry the distribution
// spec's JSON body: NAME_INVALID and DIGEST_INVALID (400), NAME_UNKNOWN,
// MANIFEST_UNKNOWN and BLOB_UNKNOWN (404), PAGINATION_NUMBER_INVALID (400).
// Page sizes are capped at MaxPageSize.
//
// # Manifests as stored
//
// A manifest is served as stored, with its own media type as Content-Type,
// whatever the client's Accept headers list (as distribution does): a tag
// that names an index answers with that index, never with one of its
// children, so a tag never resolves to a digest other than the one it
// names. Manifests are never converted.
package registry

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/reponame"
)

// MaxPageSize caps n in tag and catalog pagination.
const MaxPageSize = 1000

// Store is the read-only site the registry serves (site.View).
type Store interface {
	// Generation names the generation being served; it is cheap and
	// called once per request.
	Generation() (string, error)
	// Images returns the generation being served and its image index.
	Images() (generation string, index []byte, err error)
	// Blob opens a blob of the store by digest.
	Blob(digest string) (*os.File, error)
}

// Options configure a Registry. The zero value maps names with the default
// mapping and logs nothing.
type Options struct {
	Mapping reponame.Mapping
	Log     *slog.Logger
}

// Registry is the /v2 handler.
type Registry struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu   sync.Mutex
	snap *snapshot
}

// New returns a registry serving store.
func New(store Store, opts Options) *Registry {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, opts: opts, log: log}
}

// current returns the snapshot of the generation being served, building it
// when the generation changed.
func (g *Registry) current() (*snapshot, error) {
	gen, err := g.store.Generation()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.snap != nil && g.snap.generation == gen {
		return g.snap, nil
	}
	start := time.Now()
	s, err := load(g.store, g.opts.Mapping, g.log)
	if err != nil {
		return nil, err
	}
	g.log.Info("registry snapshot", "generation", s.generation, "repositories", len(s.catalog),
		"kitsIsolated", len(s.isolated), "tagsWithheld", len(s.withheld), "took", time.Since(start).Round(time.Microsecond))
	g.snap = s
	return s, nil
}

// Ready reports whether the generation being served can be read and every
// kit's images are served: it fails naming each isolated kit and why, and
// each tag withheld from a kit because a kit active before it serves it.
func (g *Registry) Ready() error {
	s, err := g.current()
	if errors.Is(err, errdef.ErrNotFound) {
		return nil // an empty site serves an empty registry
	}
	if err != nil {
		return err
	}
	return s.problem()
}

// ServeHTTP implements http.Handler for /v2/ and everything below it.
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only: "+r.Method+" is not supported")
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		writeError(w, r, http.StatusNotFound, "NAME_UNKNOWN", "not a /v2/ path")
		return
	}
	if p == "" {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}\n"))
		return
	}
	snap, err := g.current()
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		snap = &snapshot{repos: map[string]*repository{}}
	case err != nil:
		g.log.Error("registry unavailable", "error", err)
		writeError(w, r, http.StatusServiceUnavailable, "UNAVAILABLE", "the site's images cannot be read now")
		return
	}
	if p == "_catalog" {
		g.catalog(w, r, snap)
		return
	}
	name, kind, arg, ok := splitPath(p)
	if !ok {
		writeError(w, r, http.StatusNotFound, "NAME_UNKNOWN", "unknown endpoint")
		return
	}
	if len(name) > reponame.MaxNameLength || !reponame.Name.MatchString(name) {
		writeError(w, r, http.StatusBadRequest, "NAME_INVALID", "invalid repository name")
		return
	}
	repo := snap.repos[name]
	if repo == nil {
		writeError(w, r, http.StatusNotFound, "NAME_UNKNOWN", "repository "+name+" is not known")
		return
	}
	switch kind {
	case "manifests":
		g.manifest(w, r, repo, arg)
	case "blobs":
		g.blob(w, r, repo, arg)
	case "tags":
		tags(w, r, name, repo)
	case "referrers":
		referrers(w, r, repo, arg)
	}
}

// splitPath splits "<name>/<kind>/<arg>" (or "<name>/tags/list").
func splitPath(p string) (name, kind, arg string, ok bool) {
	if n, found := strings.CutSuffix(p, "/tags/list"); found {
		return n, "tags", "", n != ""
	}
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", "", false
	}
	arg = p[i+1:]
	j := strings.LastIndexByte(p[:i], '/')
	if j < 0 {
		return "", "", "", false
	}
	name, kind = p[:j], p[j+1:i]
	switch kind {
	case "manifests", "blobs", "referrers":
		return name, kind, arg, name != "" && arg != ""
	}
	return "", "", "", false
}

func (g *Registry) manifest(w http.ResponseWriter, r *http.Request, repo *repository, ref string) {
	var desc ocispec.Descriptor
	var ok bool
	if strings.Contains(ref, ":") {
		if !reponame.ValidDigest(ref) {
			writeError(w, r, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest "+strconv.Quote(ref))
			return
		}
		desc, ok = repo.manifests[ref]
	} else {
		if !reponame.Tag.MatchString(ref) {
			writeError(w, r, http.StatusNotFound, "MANIFEST_UNKNOWN", "invalid tag")
			return
		}
		desc, ok = repo.tags[ref]
	}
	if !ok {
		writeError(w, r, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest "+ref+" is not known")
		return
	}
	g.serveBlob(w, r, desc, desc.MediaType, "MANIFEST_UNKNOWN", ref == string(desc.Digest))
}

func (g *Registry) blob(w http.ResponseWriter, r *http.Request, repo *repository, dg string) {
	if !reponame.ValidDigest(dg) {
		writeError(w, r, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest "+strconv.Quote(dg))
		return
	}
	size, ok := repo.blobs[dg]
	if !ok {
		writeError(w, r, http.StatusNotFound, "BLOB_UNKNOWN", "blob "+dg+" is not known")
		return
	}
	g.serveBlob(w, r, ocispec.Descriptor{Digest: digest.Digest(dg), Size: size}, "application/octet-stream", "BLOB_UNKNOWN", true)
}

// serveBlob answers with the stored bytes of desc: Range, conditional
// requests and HEAD through http.ServeContent, which streams the file.
// Content asked for by digest never changes and may be cached for good; a
// tag may move with the next generation.
func (g *Registry) serveBlob(w http.ResponseWriter, r *http.Request, desc ocispec.Descriptor, contentType, unknown string, byDigest bool) {
	f, err := g.store.Blob(string(desc.Digest))
	if errors.Is(err, errdef.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, unknown, string(desc.Digest)+" is missing from the store")
		return
	}
	if err != nil {
		g.log.Error("reading the store", "digest", desc.Digest, "error", err)
		writeError(w, r, http.StatusInternalServerError, "UNKNOWN", "the store cannot be read")
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != desc.Size {
		g.log.Error("store blob has the wrong size", "digest", desc.Digest, "want", desc.Size)
		writeError(w, r, http.StatusInternalServerError, "UNKNOWN", "the store is damaged")
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Docker-Content-Digest", string(desc.Digest))
	h.Set("ETag", `"`+string(desc.Digest)+`"`)
	if byDigest {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, f)
}

// page applies n and last to a sorted list and sets the Link header of the
// next page. A bad n is PAGINATION_NUMBER_INVALID; n is capped at
// MaxPageSize.
func page(w http.ResponseWriter, r *http.Request, all []string) ([]string, bool) {
	q := r.URL.Query()
	n := MaxPageSize
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeError(w, r, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer")
			return nil, false
		}
		n = min(v, MaxPageSize)
	}
	start := 0
	if last := q.Get("last"); last != "" {
		start = sort.SearchStrings(all, last)
		if start < len(all) && all[start] == last {
			start++
		}
	}
	end := min(start+n, len(all))
	out := all[start:end]
	if end < len(all) && n > 0 {
		u := url.URL{Path: r.URL.Path, RawQuery: url.Values{"n": {strconv.Itoa(n)}, "last": {out[len(out)-1]}}.Encode()}
		w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
	}
	return out, true
}

func (g *Registry) catalog(w http.ResponseWriter, r *http.Request, snap *snapshot) {
	names, ok := page(w, r, snap.catalog)
	if !ok {
		return
	}
	writeJSON(w, r, "application/json", map[string][]string{"repositories": nonNil(names)})
}

func tags(w http.ResponseWriter, r *http.Request, name string, repo *repository) {
	list, ok := page(w, r, repo.tagList)
	if !ok {
		return
	}
	writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, nonNil(list)})
}

func referrers(w http.ResponseWriter, r *http.Request, repo *repository, dg string) {
	if !reponame.ValidDigest(dg) {
		writeError(w, r, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest "+strconv.Quote(dg))
		return
	}
	list := repo.referrers[dg]
	if at := r.URL.Query().Get("artifactType"); at != "" {
		var kept []ocispec.Descriptor
		for _, d := range list {
			if d.ArtifactType == at {
				kept = append(kept, d)
			}
		}
		list = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: list}
	idx.SchemaVersion = 2
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	writeJSON(w, r, ocispec.MediaTypeImageIndex, idx)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// writeError writes the distribution spec's error body.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	type specError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(map[string][]specError{"errors": {{Code: code, Message: message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
