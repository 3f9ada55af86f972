package serve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/gencache"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
)

// Generations is the installed site as a Tree reads it (site.View).
type Generations interface {
	// OpenGeneration opens the generation being served; id names its
	// content (two opens with one id see the same files).
	OpenGeneration() (gen *os.Root, id string, err error)
	// KitManifests returns the manifests of the kits active in the
	// generation open at gen: every kit of it, or an error.
	KitManifests(gen *os.Root) ([]*manifest.Manifest, error)
}

// TreeEntry is one file of a tree's JSON index.
type TreeEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// treeIndexes is how many generations' indexes a Tree keeps (the current
// one, and a few it may be switched back to).
const treeIndexes = 4

// treeRetry is how long a Tree answers from a failed index build before it
// reads the generation's manifests again.
const treeRetry = 5 * time.Second

// Tree serves the files of one part ("rules", "dashboards") of the
// generation being served, mounted at /PART/: GET /PART/ (or
// /PART/index.json) is a JSON index of the part's files with their size and
// sha256; GET /PART/PATH is one file, with a strong ETag (its sha256), Range
// and conditional requests.
//
// The index comes from the kits' manifests, not from the folder: it is
// built once per generation (the generations are immutable) and lists
// exactly the files the generation's kits installed; only those are served,
// with the size and sha256 their manifest gives. A request opens the
// generation once and reads its index and file from that one generation, so
// a generation switch is never seen half-way; paths are resolved inside it
// with os.Root, so nothing outside it is ever opened.
//
// Every response carries X-Content-Type-Options: nosniff, and a file's
// Content-Type comes from a fixed allow-list by extension (ContentType):
// a kit cannot have a file served as HTML or script.
func Tree(part string, src Generations) http.Handler {
	return &tree{part: part, prefix: "/" + part + "/", src: src, indexes: gencache.New[*treeIndex](treeIndexes, treeRetry)}
}

type tree struct {
	part, prefix string
	src          Generations
	indexes      *gencache.Cache[*treeIndex]
}

type treeIndex struct {
	files map[string]TreeEntry // by path inside the part
	body  []byte               // the JSON index
	etag  string
}

func (t *tree) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	// A generation that is removed while its index is first built gives
	// way to the one that replaced it; the same generation failing twice
	// is broken.
	var gen *os.Root
	var idx *treeIndex
	failed := ""
	for try := 1; ; try++ {
		g, id, err := t.src.OpenGeneration()
		if err != nil {
			http.Error(w, "no generation installed", http.StatusServiceUnavailable)
			return
		}
		if idx, err = t.index(g, id); err == nil {
			gen = g
			break
		}
		g.Close()
		if id == failed || try == 10 {
			http.Error(w, "index unavailable", http.StatusServiceUnavailable)
			return
		}
		failed = id
	}
	defer gen.Close()
	rel := strings.TrimPrefix(r.URL.Path, t.prefix)
	if rel == "" || rel == "index.json" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", idx.etag)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.json", time.Time{}, bytes.NewReader(idx.body))
		return
	}
	e, ok := idx.files[rel]
	if !ok {
		http.NotFound(w, r)
		return
	}
	name := path.Join(t.part, rel)
	// Installed files are regular files of the listed size; anything else
	// is not served: a symlink is refused, and a named pipe put in its
	// place does not hold the request (plainfile.OpenRegularNoFollowIn).
	f, st, err := plainfile.OpenRegularNoFollowIn(gen, name)
	if err != nil {
		http.Error(w, "file unavailable", http.StatusServiceUnavailable)
		return
	}
	defer f.Close()
	if st.Size() != e.Size {
		http.Error(w, "file unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("ETag", `"sha256:`+e.SHA256+`"`)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", ContentType(rel))
	http.ServeContent(w, r, path.Base(rel), time.Time{}, f)
}

// index returns the index of the generation open at gen, building it on
// first use; concurrent first requests wait for one build. A failed build is
// kept for treeRetry (so a broken generation is not re-read by every
// request), then tried again.
func (t *tree) index(gen *os.Root, id string) (*treeIndex, error) {
	return t.indexes.Get(id, func() (*treeIndex, error) { return t.build(gen) })
}

func (t *tree) build(gen *os.Root) (*treeIndex, error) {
	kits, err := t.src.KitManifests(gen)
	if err != nil {
		return nil, err
	}
	idx := &treeIndex{files: map[string]TreeEntry{}}
	for _, m := range kits {
		for _, e := range m.Entries {
			rel, ok := strings.CutPrefix(e.Path, t.part+"/")
			if !ok || e.InBase || !fs.ValidPath(rel) {
				continue
			}
			if _, dup := idx.files[rel]; dup {
				return nil, errors.New("two kits list " + e.Path)
			}
			idx.files[rel] = TreeEntry{Path: rel, Size: e.Size, SHA256: e.SHA256}
		}
	}
	entries := make([]TreeEntry, 0, len(idx.files))
	for _, e := range idx.files {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	b, err := json.MarshalIndent(map[string]any{"files": entries}, "", "  ")
	if err != nil {
		return nil, err
	}
	idx.body = append(b, '\n')
	sum := sha256.Sum256(idx.body)
	idx.etag = `"sha256:` + hex.EncodeToString(sum[:]) + `"`
	return idx, nil
}

// ContentType is the Content-Type a tree file is served with, from a fixed
// allow-list by extension: YAML, JSON and plain text; anything else is
// application/octet-stream. A kit's file is never served as HTML or script,
// whatever its name or content (with nosniff, browsers do not guess).
func ContentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return "application/yaml"
	case ".json":
		return "application/json"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
