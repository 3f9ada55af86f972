package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// MaxTreeFile bounds a file served from a tree (rules and dashboards are
// small; the ETag is their sha256).
const MaxTreeFile = 64 << 20

// TreeEntry is one file of a tree's JSON index.
type TreeEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Tree serves the files of one folder of the current generation: GET
// PREFIX/ (or PREFIX/index.json) is a JSON index of every file with its size
// and sha256; GET PREFIX/PATH is the file with a strong ETag (its sha256),
// Range and conditional requests. dir resolves the folder once per request,
// so a generation switch is never seen half-way; paths are resolved inside
// it with os.Root, so nothing outside it is ever opened.
func Tree(prefix string, dir func() (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		d, err := dir()
		if err != nil {
			http.Error(w, "no generation installed", http.StatusServiceUnavailable)
			return
		}
		rel := strings.TrimPrefix(r.URL.Path, prefix)
		rel = strings.TrimPrefix(rel, "/")
		root, err := os.OpenRoot(d)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				serveIndex(w, r, nil)
				return
			}
			http.Error(w, "tree unavailable", http.StatusServiceUnavailable)
			return
		}
		defer root.Close()
		if rel == "" || rel == "index.json" {
			serveIndex(w, r, root)
			return
		}
		if !fs.ValidPath(rel) || strings.Contains(rel, "\\") {
			http.Error(w, "invalid path", http.StatusBadRequest)
			return
		}
		f, err := root.Open(rel)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() || st.Size() > MaxTreeFile {
			http.NotFound(w, r)
			return
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("ETag", `"sha256:`+hex.EncodeToString(h.Sum(nil))+`"`)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", ContentType(rel))
		http.ServeContent(w, r, path.Base(rel), time.Time{}, f)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, root *os.Root) {
	entries := []TreeEntry{}
	if root != nil {
		fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.Size() > MaxTreeFile {
				return nil
			}
			f, err := root.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			h := sha256.New()
			io.Copy(h, f)
			entries = append(entries, TreeEntry{Path: p, Size: info.Size(), SHA256: hex.EncodeToString(h.Sum(nil))})
			return nil
		})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	b, _ := json.MarshalIndent(map[string]any{"files": entries}, "", "  ")
	sum := sha256.Sum256(b)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"sha256:`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "index.json", time.Time{}, strings.NewReader(string(b)+"\n"))
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
