// Package debuginfod answers the debuginfod protocol (elfutils' HTTP
// lookup of debug files by build id) from the .build-id tree of an
// installed generation (package debugstore), for offkit serve.
package debuginfod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
)

// Generations is the installed site as the debuginfod handler reads it
// (site.View): a request opens the generation being served once and reads
// only inside it.
type Generations interface {
	// OpenGeneration opens the generation being served; id names its
	// content.
	OpenGeneration() (gen *os.Root, id string, err error)
}

// Prefix is where Handler is mounted.
const Prefix = "/buildid/"

// The debuginfod protocol's headers.
const (
	HeaderSize    = "X-DEBUGINFOD-SIZE"
	HeaderFile    = "X-DEBUGINFOD-FILE"
	HeaderMaxSize = "X-DEBUGINFOD-MAXSIZE"
)

// The kinds of request, the values of the metrics' kind label.
const (
	kindSection = "section"
	kindSource  = "source"
)

// Handler answers the debuginfod protocol from the .build-id tree of the
// generation being served (mounted at Prefix):
//
//	GET|HEAD /buildid/ID/debuginfo        debug/.build-id/<aa>/<rest>.debug
//	GET|HEAD /buildid/ID/executable       debug/.build-id/<aa>/<rest>
//	GET|HEAD /buildid/ID/section/NAME     the bytes of section NAME of the
//	                                      debug file, else of the executable
//	GET|HEAD /buildid/ID/source/PATH      404: no source archives are carried
//
// ID is checked by debugstore.ParseID (400 otherwise; upper case folds to lower) and is
// the only part of a request that names a file: it is looked up as
// .build-id/<aa>/<rest>[.debug] inside the generation, opened with os.Root,
// a regular file only. A section NAME is only compared with the names in
// the file's section header table (debugstore.FindSection): a SHT_NOBITS section has
// no bytes and is looked for in the executable, then 404; a compressed
// section (SHF_COMPRESSED) is served raw, its compression header and
// compressed bytes, as elfutils' debuginfod serves it.
//
// Responses carry Content-Length, X-DEBUGINFOD-SIZE (the whole file's or
// section's size), X-DEBUGINFOD-FILE (the path inside the generation),
// Last-Modified, and answer Range and conditional requests
// (http.ServeContent). A file or section larger than the request's
// X-DEBUGINFOD-MAXSIZE is 406, as elfutils answers; a MAXSIZE that is not a
// decimal number is 400. Unknown ids and an unset site are 404, methods
// other than GET and HEAD 405.
//
// Handler is a prometheus.Collector of offkit_debuginfod_hits_total,
// offkit_debuginfod_misses_total and offkit_debuginfod_bytes_total, labelled
// kind (debuginfo, executable, section, source).
type Handler struct {
	src                 Generations
	hits, misses, bytes *prometheus.CounterVec
	cache               smallFiles
}

// NewHandler returns the debuginfod handler of the site src.
func NewHandler(src Generations) *Handler {
	h := &Handler{
		src: src,
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_debuginfod_hits_total", Help: "debuginfod requests answered with a file or section, by kind.",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_debuginfod_misses_total", Help: "debuginfod requests for a well-formed build id answered 404, by kind.",
		}, []string{"kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offkit_debuginfod_bytes_total", Help: "Bytes of debug files and sections sent, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range []string{string(debugstore.KindDebuginfo), string(debugstore.KindExecutable), kindSection, kindSource} {
		h.hits.WithLabelValues(k)
		h.misses.WithLabelValues(k)
		h.bytes.WithLabelValues(k)
	}
	return h
}

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	h.hits.Describe(ch)
	h.misses.Describe(ch)
	h.bytes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	h.hits.Collect(ch)
	h.misses.Collect(ch)
	h.bytes.Collect(ch)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rawID, what, _ := strings.Cut(rest, "/")
	id, err := debugstore.ParseID(rawID)
	if err != nil {
		http.Error(w, "build id: "+err.Error(), http.StatusBadRequest)
		return
	}
	var kind, section string
	switch {
	case what == string(debugstore.KindDebuginfo), what == string(debugstore.KindExecutable):
		kind = what
	case strings.HasPrefix(what, "section/"):
		kind, section = kindSection, strings.TrimPrefix(what, "section/")
	case strings.HasPrefix(what, "source/"):
		// No source archives are carried (docs/debug.md says how they
		// would be).
		h.misses.WithLabelValues(kindSource).Inc()
		http.Error(w, "no sources are served", http.StatusNotFound)
		return
	default:
		http.Error(w, "want /buildid/ID/debuginfo, executable, section/NAME or source/PATH", http.StatusNotFound)
		return
	}
	maxSize := int64(-1)
	if v := r.Header.Get(HeaderMaxSize); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, HeaderMaxSize+": not a size", http.StatusBadRequest)
			return
		}
		if n > 0 {
			maxSize = n
		}
	}
	a, ok := h.open(w, kind, id, section)
	if !ok {
		return
	}
	if a.file != nil {
		defer a.file.Close()
	}
	if maxSize >= 0 && a.size > maxSize {
		w.Header().Set(HeaderSize, strconv.FormatInt(a.size, 10))
		http.Error(w, fmt.Sprintf("%d bytes, over %s %d", a.size, HeaderMaxSize, maxSize), http.StatusNotAcceptable)
		return
	}
	h.hits.WithLabelValues(kind).Inc()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderSize, strconv.FormatInt(a.size, 10))
	w.Header().Set(HeaderFile, "/"+a.name)
	http.ServeContent(&countingWriter{ResponseWriter: w, c: h.bytes.WithLabelValues(kind)}, r, "", a.mod, a.content)
}

// answer is what open found for a request: size bytes of content, the
// name and modification time of the file they come from, and that file,
// to close once served (nil when served from memory).
type answer struct {
	content io.ReadSeeker
	size    int64
	name    string
	mod     time.Time
	file    *os.File
}

// fromMemory answers with the bytes of a cached file.
func fromMemory(c *cachedFile) answer {
	return answer{content: bytes.NewReader(c.data), size: int64(len(c.data)), name: c.name, mod: c.mod}
}

// open opens what a request asks for: a small file already read is served
// from memory (h.cache); anything else is opened in the generation served.
// When it cannot, it answers the request itself and returns ok false.
func (h *Handler) open(w http.ResponseWriter, kind, id, section string) (answer, bool) {
	var gk string
	key := kind + "/" + id
	if kind != kindSection {
		c, k, hit := h.cache.lookup(h.src, key)
		if hit {
			return fromMemory(c), true
		}
		gk = k
	}
	gen, _, err := h.src.OpenGeneration()
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			h.misses.WithLabelValues(kind).Inc()
			http.Error(w, "nothing installed", http.StatusNotFound)
			return answer{}, false
		}
		http.Error(w, "no generation", http.StatusServiceUnavailable)
		return answer{}, false
	}
	if kind == kindSection {
		f, st, fname, s, err := openSection(gen, id, section)
		gen.Close()
		if err != nil {
			h.miss(w, kind, err)
			return answer{}, false
		}
		return answer{content: io.NewSectionReader(f, s.Offset, s.Size), size: s.Size, name: fname, mod: st.ModTime(), file: f}, true
	}
	f, st, fname, err := debugstore.Open(gen, id, debugstore.Kind(kind))
	genName := gen.Name()
	gen.Close()
	if err != nil {
		h.miss(w, kind, err)
		return answer{}, false
	}
	if c, kept := h.cache.store(gk, genName, key, f, st.Size(), fname, st.ModTime()); kept {
		f.Close()
		return fromMemory(c), true
	}
	return answer{content: f, size: st.Size(), name: fname, mod: st.ModTime(), file: f}, true
}

// miss answers 404 for a well-formed id without the file or section.
func (h *Handler) miss(w http.ResponseWriter, kind string, err error) {
	h.misses.WithLabelValues(kind).Inc()
	if errors.Is(err, errdef.ErrInvalid) || errors.Is(err, errdef.ErrIO) {
		// A file that is there but not a regular file, or malformed: the
		// kit carries nothing to serve under this id; the answer says why.
		http.Error(w, "not found: "+err.Error(), http.StatusNotFound)
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}

// openSection opens the file holding section name for id: the debug file
// when it has the section with bytes, else the executable.
func openSection(gen *os.Root, id, name string) (*os.File, fs.FileInfo, string, debugstore.Section, error) {
	var errs []error
	for _, k := range []debugstore.Kind{debugstore.KindDebuginfo, debugstore.KindExecutable} {
		f, st, fname, err := debugstore.Open(gen, id, k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, found, err := debugstore.FindSection(f, st.Size(), name)
		if err == nil && found {
			return f, st, fname, s, nil
		}
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: no section %q with bytes: %w", fname, cut(name), errdef.ErrNotFound)
		}
		errs = append(errs, fmt.Errorf("%s: %w", fname, err))
	}
	return nil, nil, "", debugstore.Section{}, errors.Join(errs...)
}

// countingWriter counts the bytes of the body sent, keeping the
// ResponseWriter's ReadFrom (sendfile) when it has one.
type countingWriter struct {
	http.ResponseWriter
	c prometheus.Counter
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.c.Add(float64(n))
	return n, err
}

func (w *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.c.Add(float64(n))
	return n, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cut quotes at most 80 bytes of a name from a request.
func cut(s string) string { return limit.Clip(s, 80) }
