package debuginfod_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offkit/offkit/debugstore/debuginfod"
	"github.com/offkit/offkit/internal/debugtest"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/serve"
	"github.com/offkit/offkit/site"
)

// server serves the site as offkit serve does: serve.New with the
// debuginfod handler mounted and its metrics registered.
func (ds *debugSite) server(t *testing.T) (*httptest.Server, http.Handler) {
	t.Helper()
	srv := serve.New(serve.Config{}, nil)
	h := debuginfod.NewHandler(site.NewView(ds.root))
	srv.Handle(debuginfod.Prefix, "buildid", h)
	srv.Metrics().MustRegister(h)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, h
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// rawSection is the bytes the file holds for section name, read with
// debug/elf's section header (Offset, FileSize: raw, not inflated).
func rawSection(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[s.Offset : s.Offset+s.FileSize]
}

// offkit serve answers debuginfod clients from an installed kit's
// .build-id tree: the .debug file and the executable byte for byte, a
// section from the debug file or else the executable, with debuginfod's
// headers, Range, HEAD, MAXSIZE (406), 404 for what it does not carry, 405
// for other methods, and hits, misses and bytes on /metrics.
func TestDebuginfod(t *testing.T) {
	ds := newDebugSite(t)
	ts, _ := ds.server(t)
	id := ds.prog.ID
	base := ts.URL + "/buildid/" + id
	debug, _ := os.ReadFile(ds.prog.Debug)
	exe, _ := os.ReadFile(ds.prog.Stripped)

	for _, tc := range []struct {
		url, file string
		want      []byte
	}{
		{base + "/debuginfo", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", debug},
		{ts.URL + "/buildid/" + strings.ToUpper(id) + "/debuginfo", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", debug},
		{base + "/executable", "/debug/.build-id/" + id[:2] + "/" + id[2:], exe},
		// .debug_info is in the .debug file; .gnu_debuglink and .text only
		// in the executable (.text is NOBITS in the .debug file).
		{base + "/section/.debug_info", "/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug", rawSection(t, ds.prog.Debug, ".debug_info")},
		{base + "/section/.gnu_debuglink", "/debug/.build-id/" + id[:2] + "/" + id[2:], rawSection(t, ds.prog.Stripped, ".gnu_debuglink")},
		{base + "/section/.text", "/debug/.build-id/" + id[:2] + "/" + id[2:], rawSection(t, ds.prog.Stripped, ".text")},
	} {
		if len(tc.want) == 0 {
			t.Fatalf("%s: nothing to compare with", tc.url)
		}
		r := do(t, "GET", tc.url)
		if r.code != 200 || !bytes.Equal(r.body, tc.want) {
			t.Errorf("GET %s: %d, %d bytes, want 200 and %d bytes", tc.url, r.code, len(r.body), len(tc.want))
		}
		n := strconv.Itoa(len(tc.want))
		if h := r.header; h.Get("Content-Length") != n || h.Get("X-DEBUGINFOD-SIZE") != n || h.Get("X-DEBUGINFOD-FILE") != tc.file ||
			h.Get("Last-Modified") == "" || h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET %s: headers %v", tc.url, h)
		}
		head := do(t, "HEAD", tc.url)
		if head.code != 200 || len(head.body) != 0 || head.header.Get("Content-Length") != n || head.header.Get("X-DEBUGINFOD-SIZE") != n {
			t.Errorf("HEAD %s: %d %v", tc.url, head.code, head.header)
		}
	}
	// .gnu_debuglink of the executable names the .debug file.
	if link := rawSection(t, ds.prog.Stripped, ".gnu_debuglink"); !bytes.HasPrefix(link, []byte("prog.debug\x00")) {
		t.Errorf(".gnu_debuglink %q", link)
	}

	// Range.
	r := do(t, "GET", base+"/debuginfo", "Range", "bytes=100-199")
	if r.code != http.StatusPartialContent || !bytes.Equal(r.body, debug[100:200]) || r.header.Get("X-DEBUGINFOD-SIZE") != strconv.Itoa(len(debug)) {
		t.Errorf("Range: %d, %d bytes, %v", r.code, len(r.body), r.header)
	}
	// X-DEBUGINFOD-MAXSIZE: a file over it is 406, at it is served.
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", strconv.Itoa(len(debug)-1)); r.code != http.StatusNotAcceptable {
		t.Errorf("MAXSIZE under the size: %d", r.code)
	}
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", strconv.Itoa(len(debug))); r.code != 200 || !bytes.Equal(r.body, debug) {
		t.Errorf("MAXSIZE at the size: %d", r.code)
	}
	if r := do(t, "GET", base+"/debuginfo", "X-DEBUGINFOD-MAXSIZE", "lots"); r.code != http.StatusBadRequest {
		t.Errorf("MAXSIZE lots: %d", r.code)
	}
	// What is not carried.
	for _, u := range []string{
		"/buildid/" + strings.Repeat("0", 40) + "/debuginfo", "/buildid/" + strings.Repeat("0", 40) + "/section/.text",
		"/buildid/" + id + "/section/.bss", "/buildid/" + id + "/section/.nothing", "/buildid/" + id + "/section/",
		"/buildid/" + id + "/source/usr/src/prog.c", "/buildid/" + id + "/source/etc/passwd", "/buildid/" + id + "/other", "/buildid/" + id,
	} {
		if r := do(t, "GET", ts.URL+u); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, r.code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		if r := do(t, m, base+"/debuginfo"); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v", m, r.code, r.header)
		}
	}

	m := string(do(t, "GET", ts.URL+"/metrics").body)
	for _, want := range []string{
		`offkit_debuginfod_hits_total{kind="debuginfo"} 6`,
		`offkit_debuginfod_hits_total{kind="executable"} 2`,
		`offkit_debuginfod_hits_total{kind="section"} 6`,
		`offkit_debuginfod_misses_total{kind="debuginfo"} 1`,
		`offkit_debuginfod_misses_total{kind="section"} 4`,
		`offkit_debuginfod_misses_total{kind="source"} 2`,
		`offkit_debuginfod_bytes_total{kind="debuginfo"} ` + strconv.Itoa(3*len(debug)+100),
		`offkit_debuginfod_bytes_total{kind="executable"} ` + strconv.Itoa(len(exe)),
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Ids that are no build id are 400 from the handler and never reach the
// file system; through the server, paths with dot segments are redirected
// by its mux before any handler. Nothing of them is ever served.
func TestDebuginfodHostileIDs(t *testing.T) {
	ds := newDebugSite(t)
	ts, h := ds.server(t)
	id := ds.prog.ID
	for _, bad := range []string{
		"../../etc/passwd", "%2e%2e", id + "/source//etc", "/etc/passwd", "..%2f..%2fetc%2fpasswd", id[1:], id + "0", id[:14], strings.Repeat("a", 130),
		id[:38] + "zz", "-" + id[1:], id[:20] + "%00" + id[23:], strings.Repeat("0", 1<<20),
	} {
		path := "/buildid/" + bad + "/debuginfo"
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(path, "%2e", "."), "%2f", "/"), "%00", "\x00")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest && !(rec.Code == http.StatusNotFound && (strings.Contains(bad, "%2f") || strings.HasPrefix(bad, id+"/"))) {
			t.Errorf("handler %.60q: %d, want 400", req.URL.Path, rec.Code)
		}
		if len(bad) > 1000 {
			continue // past the server's header limit: 431
		}
		if r := do(t, "GET", ts.URL+path); r.code == 200 || bytes.Contains(r.body, []byte("root:")) {
			t.Errorf("GET %.60q: %d", path, r.code)
		}
	}
	if r := do(t, "GET", ts.URL+"/buildid/"+strings.Repeat("0", 1<<20)+"/debuginfo"); r.code != http.StatusRequestHeaderFieldsTooLarge && r.code != http.StatusBadRequest {
		t.Errorf("1 MB id: %d", r.code)
	}
}

// dirGeneration serves a folder as the generation being served: the
// handler's defences against what a generation may hold, with no kit
// around it (verify refuses such kits at install).
type dirGeneration string

func (d dirGeneration) OpenGeneration() (*os.Root, string, error) {
	r, err := os.OpenRoot(string(d))
	return r, string(d), err
}

// craftedGeneration writes files (path in the generation → content) into
// a folder served as a generation.
func craftedGeneration(t *testing.T, files map[string][]byte) debuginfod.Generations {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dirGeneration(dir)
}

// debugSite is a site with one kit whose debug: source is the .build-id
// tree of a gcc-built program, installed by site.Install.
type debugSite struct {
	root string
	prog *kittest.DebugProgram
}

func newDebugSite(t *testing.T) *debugSite {
	t.Helper()
	root, prog := debugtest.Site(t)
	return &debugSite{root: root, prog: prog}
}

// What a kit installs under .build-id is served only as what it is: a
// folder where a .debug file would be is 404, as is a section of a file
// that is no ELF or whose section table lies past its end; the
// well-formed files next to them still serve.
func TestDebuginfodHostileKit(t *testing.T) {
	a, b, c := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)
	gen := craftedGeneration(t, map[string][]byte{
		"debug/.build-id/aa/" + a[2:] + ".debug/x": []byte("a folder"),
		"debug/.build-id/bb/" + b[2:] + ".debug":   []byte("not ELF"),
		"debug/.build-id/cc/" + c[2:] + ".debug":   tablePastEnd(),
		"debug/.build-id/cc/" + c[2:]:              []byte("\x7fELF\x02\x01\x01\x00 not much"),
	})
	srv := serve.New(serve.Config{}, nil)
	h := debuginfod.NewHandler(gen)
	srv.Handle(debuginfod.Prefix, "buildid", h)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, u := range []string{"/buildid/" + a + "/debuginfo", "/buildid/" + a + "/section/.text", "/buildid/" + b + "/section/.text", "/buildid/" + c + "/section/.text"} {
		if r := do(t, "GET", ts.URL+u); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", u, r.code, r.body)
		}
	}
	if r := do(t, "GET", ts.URL+"/buildid/"+b+"/debuginfo"); r.code != 200 || string(r.body) != "not ELF" {
		t.Errorf("debuginfo of %s: %d %q", b, r.code, r.body)
	}
	// The section table of c's .debug file is past its end: named in the
	// answer.
	if r := do(t, "GET", ts.URL+"/buildid/"+c+"/section/.text"); !strings.Contains(string(r.body), "ELF header") {
		t.Errorf("c: %s", r.body)
	}
}

// Two servers over one read-only site answer byte for byte alike, headers
// included (but Date).
func TestDebuginfodReplicas(t *testing.T) {
	ds := newDebugSite(t)
	one, _ := ds.server(t)
	two, _ := ds.server(t)
	for _, u := range []string{"/debuginfo", "/executable", "/section/.debug_info", "/section/.text"} {
		r1, r2 := do(t, "GET", one.URL+"/buildid/"+ds.prog.ID+u), do(t, "GET", two.URL+"/buildid/"+ds.prog.ID+u)
		r1.header.Del("Date")
		r2.header.Del("Date")
		if r1.code != 200 || !bytes.Equal(r1.body, r2.body) || fmt.Sprint(r1.header) != fmt.Sprint(r2.header) {
			t.Errorf("%s: %d %v, %d %v", u, r1.code, r1.header, r2.code, r2.header)
		}
	}
}

// tablePastEnd is a 64-bit ELF header whose section header table lies a
// terabyte past the end of the file.
func tablePastEnd() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	b[40+5] = 1 // e_shoff 1<<40
	b[58] = 64  // e_shentsize
	b[60] = 1   // e_shnum
	return b
}
