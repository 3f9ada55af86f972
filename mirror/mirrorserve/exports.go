package mirrorserve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/internal/plainfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/mirror"
)

// The parts of a mirror.
const (
	Concelier = "concelier"
	Excititor = "excititor"
)

// ExportsPath is where a generation lists its installed exports (written
// by the site at install).
const ExportsPath = mirror.SiteExportsPath

// Limits of what a generation's index is built from.
const (
	// MaxIndexSize bounds an export's index.json and an Excititor domain's
	// index.json, which are read to list domains and exports.
	MaxIndexSize = 16 << 20
	// MaxMemoryFile is the size up to which a served file (an index, a
	// manifest, a signature) is read once per generation, checked against
	// exports.json, and served from memory; MaxMemoryFiles bounds the
	// bytes so kept per generation and kind. A Concelier export's
	// index.json is kept whatever its size and this budget (it is at most
	// MaxIndexSize), since it is served filtered (announced).
	MaxMemoryFile  = 256 << 10
	MaxMemoryFiles = 16 << 20
)

// file is one servable file: its path in the generation and what
// exports.json says of it; a small file's bytes are kept in memory.
type file struct {
	path   string // in the generation
	size   int64
	sha256 string
	body   []byte // the verified bytes of a small file, else nil
	broken bool   // a small file that did not match exports.json
}

func (f file) etag() string { return `"sha256:` + f.sha256 + `"` }

// doc is a JSON document made by the server (a domain list), with its ETag.
type doc struct {
	body []byte
	etag string
}

func newDoc(v any) (doc, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return doc{}, err
	}
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	return doc{body: b, etag: `"sha256:` + hex.EncodeToString(sum[:]) + `"`}, nil
}

// part is the served export of one part in one generation.
type part struct {
	kind     string
	exportID string          // "" when none is installed
	missing  string          // why nothing is served (activeExportId not installed)
	files    map[string]file // by path below <exportId>/mirror/: "index.json", "primary/bundle.json"
	domains  map[string]bool
	ids      []string  // domains, sorted
	age      time.Time // created, generatedAt, or the time the export id names

	// Excititor only.
	names     map[string]string          // display names from index.json, by domain
	downloads map[string]map[string]file // by domain, then exportKey + "/" + format
	dom       map[string]doc             // /excititor/mirror/domains/<id>
	list      doc                        // /excititor/mirror/domains
}

// generation is what a generation serves.
type generation struct {
	parts map[string]*part
}

// parseExports decodes exports.json (mirror.ParseSiteExports) and checks
// the domain ids, which become path segments.
func parseExports(b []byte) (*mirror.SiteExports, error) {
	se, err := mirror.ParseSiteExports(b)
	if err != nil {
		return nil, err
	}
	for i, e := range se.Exports {
		for _, d := range e.Domains {
			if !validName(d) {
				return nil, fmt.Errorf("%s: exports[%d].domains: %q is not a valid domain id", ExportsPath, i, d)
			}
		}
	}
	return se, nil
}

// buildGeneration reads the exports of the generation open at gen.
func buildGeneration(gen *os.Root, cfg Config) (*generation, error) {
	g := &generation{parts: map[string]*part{}}
	// A regular file only: a named pipe is refused, not waited on.
	b, err := limit.ReadFileIn(gen, ExportsPath, mirror.MaxSiteExports)
	if errors.Is(err, fs.ErrNotExist) {
		return g, nil // nothing installed: every part is empty
	}
	if err != nil {
		return nil, err
	}
	se, err := parseExports(b)
	if err != nil {
		return nil, err
	}
	for _, kp := range []struct {
		kind string
		p    Part
	}{{Concelier, cfg.Concelier}, {Excititor, cfg.Excititor}} {
		p, err := buildPart(gen, se, kp.kind, kp.p)
		if err != nil {
			return nil, err
		}
		g.parts[kp.kind] = p
	}
	return g, nil
}

func buildPart(gen *os.Root, se *mirror.SiteExports, kind string, cfg Part) (*part, error) {
	p := &part{kind: kind, files: map[string]file{}, domains: map[string]bool{}}
	want := cfg.ActiveExportID
	if want == "" {
		want = se.Latest[kind]
	}
	if want == "" {
		p.missing = "no " + kind + " export installed"
		return p, nil
	}
	ex := se.Export(kind, want)
	if ex == nil {
		p.missing = kind + " export " + want + " is not installed"
		return p, nil
	}
	p.exportID = ex.ExportID
	prefix := manifest.MirrorPrefix(kind, ex.ExportID)
	var kept int64
	// The domains served: those the export records that the generation
	// holds files of (a kit may carry a subset of an export's domains).
	have := map[string]bool{}
	for _, f := range ex.Files {
		rel, ok := strings.CutPrefix(f.Path, prefix)
		if !ok {
			continue
		}
		if d, _, ok := strings.Cut(rel, "/"); ok {
			have[d] = true
		}
		fe := file{path: f.Path, size: f.Size, sha256: f.SHA256}
		if f.Size <= MaxMemoryFile && kept+f.Size <= MaxMemoryFiles {
			// A file that fails its check is not served (503); the rest of
			// the export is.
			if b, err := readVerified(gen, fe); err == nil {
				fe.body = b
				kept += f.Size
			} else {
				fe.broken = true
			}
		}
		p.files[rel] = fe
	}
	for _, d := range ex.Domains {
		if have[d] && !p.domains[d] {
			p.domains[d] = true
			p.ids = append(p.ids, d)
		}
	}
	sort.Strings(p.ids)
	p.age = exportTime(ex)
	if f, ok := p.files["index.json"]; ok && kind == Concelier {
		p.files["index.json"] = announced(gen, f, p.domains)
	}
	if kind == Excititor {
		if err := p.buildExcititor(gen, cfg); err != nil {
			return nil, fmt.Errorf("excititor export %s: %w", ex.ExportID, err)
		}
	}
	return p, nil
}

// announced returns the export's index.json f as it is served: its domains
// filtered to the served ones (announcedIndex), with the digest of the
// bytes served as its ETag. An index that cannot be read, is over
// MaxIndexSize, or cannot be filtered is broken (503): the site does not
// announce domains it does not serve.
func announced(gen *os.Root, f file, served map[string]bool) file {
	if f.broken || f.size > MaxIndexSize {
		f.broken, f.body = true, nil
		return f
	}
	b := f.body
	if b == nil {
		var err error
		if b, err = readVerified(gen, f); err != nil {
			f.broken = true
			return f
		}
	}
	out, err := announcedIndex(b, served)
	if err != nil {
		f.broken, f.body = true, nil
		return f
	}
	if !bytes.Equal(out, b) {
		sum := sha256.Sum256(out)
		f.size, f.sha256 = int64(len(out)), hex.EncodeToString(sum[:])
	}
	f.body = out
	return f
}

// exportTime is when the export was made: its created or generatedAt, else
// the time its id names (20251123T000000Z).
func exportTime(ex *mirror.SiteExport) time.Time {
	if t, ok := ex.Time(); ok {
		return t
	}
	if t, err := time.Parse("20060102T150405Z", ex.ExportID); err == nil {
		return t
	}
	return time.Time{}
}

// readJSON reads a listed file of the export, checks its size and sha256
// against exports.json, and decodes it into v.
func readJSON(gen *os.Root, f file, v any) error {
	if f.size > MaxIndexSize {
		return fmt.Errorf("%s: %d bytes, over the limit of %d", f.path, f.size, MaxIndexSize)
	}
	b := f.body
	if b == nil {
		var err error
		if b, err = readVerified(gen, f); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return nil
}

// readVerified reads f (at most MaxIndexSize bytes) and checks its size and
// sha256 against exports.json.
func readVerified(gen *os.Root, f file) ([]byte, error) {
	b, err := limit.ReadFileIn(gen, f.path, min(f.size, MaxIndexSize))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != f.size || hex.EncodeToString(sum[:]) != f.sha256 {
		return nil, fmt.Errorf("%s: size or sha256 differs from %s", f.path, ExportsPath)
	}
	return b, nil
}

// openRegular opens name of gen for reading when it is a regular file.
// The open does not wait: a named pipe would block it until a writer
// came, holding the request (or the generation's build) forever; anything
// but a regular file is an error naming it (plainfile.OpenRegularIn).
func openRegular(gen *os.Root, name string) (*os.File, error) {
	fh, _, err := plainfile.OpenRegularIn(gen, name)
	return fh, err
}

// excititorIndex is the part of a per-domain index.json the server reads.
type excititorIndex struct {
	Exports []struct {
		ExportKey string `json:"exportKey"`
		Format    string `json:"format"`
		File      string `json:"file"`
	} `json:"exports"`
}

// mirrorIndex is the part of an export's index.json the server reads.
type mirrorIndex struct {
	Domains []struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	} `json:"domains"`
}

// DomainInfo is one domain as /excititor/mirror/domains lists it.
type DomainInfo struct {
	ID                         string `json:"id"`
	DisplayName                string `json:"displayName"`
	RequireAuthentication      bool   `json:"requireAuthentication"`
	MaxIndexRequestsPerHour    int    `json:"maxIndexRequestsPerHour"`
	MaxDownloadRequestsPerHour int    `json:"maxDownloadRequestsPerHour"`
	ExportID                   string `json:"exportId"`
}

func (p *part) buildExcititor(gen *os.Root, cfg Part) error {
	p.names = map[string]string{}
	p.downloads = map[string]map[string]file{}
	p.dom = map[string]doc{}
	if f, ok := p.files["index.json"]; ok {
		var mi mirrorIndex
		if err := readJSON(gen, f, &mi); err != nil {
			return err
		}
		for _, d := range mi.Domains {
			p.names[d.ID] = d.DisplayName
		}
	}
	infos := []DomainInfo{}
	for _, id := range p.ids {
		dl := map[string]file{}
		if f, ok := p.files[id+"/index.json"]; ok {
			var xi excititorIndex
			if err := readJSON(gen, f, &xi); err != nil {
				return err
			}
			for _, e := range xi.Exports {
				if !validName(e.ExportKey) || !validName(e.Format) || !validName(e.File) {
					continue // not addressable: never served
				}
				if e.File == "index.json" || strings.HasSuffix(e.File, ".jws") {
					continue // not an export file (offkit build refuses such an index): never served as one
				}
				if df, ok := p.files[id+"/"+e.File]; ok {
					dl[e.ExportKey+"/"+e.Format] = df
				}
				if sf, ok := p.files[id+"/"+e.File+".jws"]; ok {
					dl[e.ExportKey+"/"+e.Format+".jws"] = sf
				}
			}
		}
		p.downloads[id] = dl
		info := DomainInfo{
			ID: id, DisplayName: displayName(cfg, id, p.names[id]), RequireAuthentication: cfg.requireAuth(id),
			MaxIndexRequestsPerHour: cfg.MaxIndexRequestsPerHour, MaxDownloadRequestsPerHour: cfg.downloadBudget(id),
			ExportID: p.exportID,
		}
		d, err := newDoc(info)
		if err != nil {
			return err
		}
		p.dom[id] = d
		infos = append(infos, info)
	}
	var err error
	p.list, err = newDoc(map[string]any{"domains": infos})
	return err
}

func displayName(cfg Part, id, fromIndex string) string {
	if n := cfg.domain(id).DisplayName; n != "" {
		return n
	}
	if fromIndex != "" {
		return fromIndex
	}
	return id
}

// cachedGenerations is how many generations' builds are kept.
const cachedGenerations = 4

// retryBuild is how long a failed build is answered from before the
// generation is read again.
const retryBuild = 5 * time.Second

// generation returns the build of generation id, building it on first use
// from the root open returns (then calling done).
func (h *Handler) generation(id string, open func() (*os.Root, func(), error)) (*generation, error) {
	return h.gens.Get(id, func() (*generation, error) {
		gen, done, err := open()
		if err != nil {
			return nil, err
		}
		defer done()
		return buildGeneration(gen, h.cfg)
	})
}

// jwsContentType is the Content-Type of a signature file by its first
// byte: a JSON document (DSSE envelope, JWS JSON) is application/jose+json,
// a compact JWS or cosign signature application/jose.
func jwsContentType(first byte) string {
	if bytes.IndexByte([]byte("{ \t\r\n"), first) >= 0 {
		return "application/jose+json"
	}
	return "application/jose"
}

// contentType is the Content-Type of a served file by name or format.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".jsonl", ".ndjson":
		return "application/x-ndjson"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// formatContentType is the Content-Type of an Excititor export by format.
func formatContentType(format string) string {
	if format == "jsonl" {
		return "application/x-ndjson"
	}
	return "application/json" // json, openvex and csaf are JSON documents
}
